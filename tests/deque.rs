//! Integration tests of `atomkit::deque`: order, batches, bounds, and that every
//! pushed item is taken exactly once (by pop, steal or drop) under concurrency,
//! zero-sized items included, and by a drop even when another item's `Drop` panics.

#[path = "support/lincheck.rs"]
mod lincheck;

use atomkit::deque::{Injector, PushError, Steal, Stealer, Worker};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// Scales a loop count down under Miri.
fn n(full: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        full
    }
}

/// A payload that records its drop in a shared table: dropping twice panics, and
/// the test checks at the end that each id was dropped exactly once. Boxed so Miri
/// sees its allocation.
struct Item {
    id: Box<usize>,
    log: Arc<DropLog>,
}

struct DropLog {
    dropped: Vec<AtomicBool>,
    count: AtomicUsize,
    /// The id whose drop panics (after it is recorded), if any.
    bomb: Option<usize>,
}

/// The message of the panic in the bomb's drop.
const BOMB: &str = "the bomb's drop panics";

impl DropLog {
    fn new(n: usize) -> Arc<Self> {
        Self::with_bomb(n, None)
    }
    fn with_bomb(n: usize, bomb: Option<usize>) -> Arc<Self> {
        Arc::new(DropLog {
            dropped: (0..n).map(|_| AtomicBool::new(false)).collect(),
            count: AtomicUsize::new(0),
            bomb,
        })
    }
    fn item(self: &Arc<Self>, id: usize) -> Item {
        Item {
            id: Box::new(id),
            log: self.clone(),
        }
    }
    fn assert_all_dropped_once(&self) {
        assert_eq!(self.count.load(Ordering::SeqCst), self.dropped.len());
        assert!(self.dropped.iter().all(|d| d.load(Ordering::SeqCst)));
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        let was = self.log.dropped[*self.id].swap(true, Ordering::SeqCst);
        assert!(!was, "item {} dropped twice", self.id);
        self.log.count.fetch_add(1, Ordering::SeqCst);
        if self.log.bomb == Some(*self.id) {
            panic!("{BOMB}");
        }
    }
}

#[test]
fn lifo_order() {
    let w = Worker::new_lifo();
    for i in 0..100 {
        w.push(i);
    }
    for i in (0..100).rev() {
        assert_eq!(w.pop(), Some(i));
    }
    assert_eq!(w.pop(), None);
    assert!(w.is_empty());
}

#[test]
fn fifo_order() {
    let w = Worker::new_fifo();
    for i in 0..100 {
        w.push(i);
    }
    for i in 0..100 {
        assert_eq!(w.pop(), Some(i));
    }
    assert_eq!(w.pop(), None);
}

#[test]
fn steal_takes_oldest_in_both_flavors() {
    for w in [Worker::new_lifo(), Worker::new_fifo()] {
        let s = w.stealer();
        for i in 0..40 {
            w.push(i);
        }
        for i in 0..20 {
            assert_eq!(s.steal(), Steal::Success(i));
        }
        assert_eq!(s.len(), 20);
        let rest: Vec<_> = std::iter::from_fn(|| w.pop()).collect();
        assert_eq!(rest.len(), 20);
        assert_eq!(s.steal(), Steal::Empty);
    }
}

#[test]
fn interleaved_push_pop_steal_across_growth_and_shrink() {
    let w = Worker::new_lifo();
    let s = w.stealer();
    let mut model = std::collections::VecDeque::new();
    let mut next = 0;
    for round in 0..n(20, 4) {
        for _ in 0..(100 + round * 37) {
            w.push(next);
            model.push_back(next);
            next += 1;
        }
        for _ in 0..30 {
            assert_eq!(s.steal().success(), model.pop_front());
        }
        while model.len() > 3 {
            assert_eq!(w.pop(), model.pop_back());
        }
    }
    assert_eq!(w.len(), model.len());
}

#[test]
fn batch_limits_and_half() {
    for fifo in [false, true] {
        let mk = || {
            if fifo {
                Worker::new_fifo()
            } else {
                Worker::new_lifo()
            }
        };
        let src = mk();
        let s = src.stealer();
        for i in 0..100 {
            src.push(i);
        }
        let dst = mk();
        // Default limit 32 (half would be 50).
        assert_eq!(s.steal_batch(&dst), Steal::Success(()));
        assert_eq!(dst.len(), 32);
        assert_eq!(src.len(), 68);
        // Explicit limit.
        let dst2 = mk();
        assert_eq!(s.steal_batch_with_limit(&dst2, 5), Steal::Success(()));
        assert_eq!(dst2.len(), 5);
        // Half, rounded up: 63 left -> at most 32; with a large limit take 32.
        let dst3 = mk();
        assert_eq!(s.steal_batch_with_limit(&dst3, 1000), Steal::Success(()));
        assert_eq!(dst3.len(), 32);
        assert_eq!(src.len(), 31);
        // Batch and pop: the oldest comes back, the rest go to dest.
        let dst4 = mk();
        assert_eq!(
            s.steal_batch_with_limit_and_pop(&dst4, 4),
            Steal::Success(69)
        );
        assert_eq!(dst4.len(), 3);
        let mut got: Vec<_> = std::iter::from_fn(|| dst4.pop()).collect();
        got.sort();
        assert_eq!(got, vec![70, 71, 72]);
        // One item: half rounded up takes it.
        let one = mk();
        one.push(9);
        let dst5 = mk();
        assert_eq!(one.stealer().steal_batch_and_pop(&dst5), Steal::Success(9));
        assert_eq!(one.stealer().steal_batch(&dst5), Steal::Empty);
    }
}

#[test]
fn batch_into_fifo_dest_keeps_order() {
    let src = Worker::new_fifo();
    for i in 0..10 {
        src.push(i);
    }
    let dst = Worker::new_fifo();
    assert!(src.stealer().steal_batch(&dst).is_success());
    let got: Vec<_> = std::iter::from_fn(|| dst.pop()).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
}

#[test]
fn batch_into_itself() {
    let w = Worker::new_lifo();
    let s = w.stealer();
    assert_eq!(s.steal_batch(&w), Steal::Empty);
    w.push(1);
    assert_eq!(s.steal_batch(&w), Steal::Success(()));
    assert_eq!(s.steal_batch_and_pop(&w), Steal::Success(1));
}

#[test]
#[should_panic(expected = "steal limit must be at least 1")]
fn zero_limit_panics() {
    let w = Worker::<i32>::new_lifo();
    let _ = w.stealer().steal_batch_with_limit(&Worker::new_lifo(), 0);
}

#[test]
#[should_panic(expected = "deque capacity must be at least 1")]
fn zero_bound_panics() {
    let _ = Worker::<i32>::new_lifo_bounded(0);
}

#[test]
#[should_panic(expected = "push on a full bounded deque")]
fn push_on_full_bounded_panics() {
    let w = Worker::new_fifo_bounded(1);
    w.push(1);
    w.push(2);
}

#[test]
fn bounded_try_push_and_batch_room() {
    let w = Worker::new_lifo_bounded(3);
    for i in 0..3 {
        w.try_push(i).unwrap();
    }
    let e = w.try_push(3).unwrap_err();
    assert_eq!(e, PushError(3));
    assert_eq!(format!("{e:?}"), "PushError(..)");
    assert_eq!(w.stealer().steal(), Steal::Success(0));
    w.try_push(4).unwrap();
    // A batch into a bounded destination respects its room.
    let src = Worker::new_fifo();
    for i in 0..20 {
        src.push(i);
    }
    let dst = Worker::new_fifo_bounded(2);
    dst.push(100);
    assert!(src.stealer().steal_batch(&dst).is_success());
    assert_eq!(dst.len(), 2);
    assert_eq!(
        src.stealer().steal_batch(&dst),
        Steal::Empty,
        "full dest takes nothing"
    );
    assert_eq!(src.stealer().steal_batch_and_pop(&dst), Steal::Success(1));
    assert_eq!(dst.len(), 2);
    assert_eq!(src.len(), 18);
}

#[test]
fn push_was_empty_reports() {
    let w = Worker::new_fifo();
    assert!(w.push_was_empty(1));
    assert!(!w.push_was_empty(2));
    w.pop();
    w.pop();
    assert!(w.push_was_empty(3));
}

#[test]
fn steal_combinators() {
    assert_eq!(Steal::<i32>::Empty.or_else(|| Steal::Empty), Steal::Empty);
    assert_eq!(
        Steal::Retry.or_else(|| Steal::Success(1)),
        Steal::Success(1)
    );
    let s: Steal<i32> = [Steal::Empty, Steal::Empty].into_iter().collect();
    assert!(s.is_empty());
    let mut calls = 0;
    let s: Steal<i32> = [Steal::Success(1), Steal::Success(2)]
        .into_iter()
        .inspect(|_| calls += 1)
        .collect();
    assert_eq!((s, calls), (Steal::Success(1), 1));
}

#[test]
fn drops_leftovers_exactly_once() {
    let k = n(1000, 100);
    let log = DropLog::new(k);
    {
        let w = Worker::new_lifo();
        let s = w.stealer();
        for i in 0..k {
            w.push(log.item(i));
        }
        for _ in 0..k / 4 {
            drop(w.pop());
            drop(s.steal());
        }
        drop(w);
        // The stealer keeps the deque alive; its drop drops the rest.
        assert!(!s.is_empty());
    }
    log.assert_all_dropped_once();
    let log = DropLog::new(k);
    {
        let q = Injector::new();
        for i in 0..k {
            q.push(log.item(i));
        }
        for _ in 0..k / 3 {
            drop(q.steal());
        }
    }
    log.assert_all_dropped_once();
}

/// Drops of the zero-sized payloads, one counter per tag (one tag per test), so that
/// tests running at the same time do not mix their counts.
static UNIT_DROPS: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];

/// A zero-sized payload that counts its drops in `UNIT_DROPS[TAG]`. Its slots, the
/// copies a resize makes and the chunks a batch steal reads are all zero bytes long,
/// so only the count shows an item lost or taken twice.
struct Unit<const TAG: usize>;

impl<const TAG: usize> Drop for Unit<TAG> {
    fn drop(&mut self) {
        UNIT_DROPS[TAG].fetch_add(1, Ordering::SeqCst);
    }
}

fn unit_drops(tag: usize) -> usize {
    UNIT_DROPS[tag].load(Ordering::SeqCst)
}

fn worker<T>(fifo: bool) -> Worker<T> {
    if fifo {
        Worker::new_fifo()
    } else {
        Worker::new_lifo()
    }
}

/// Repeats a steal while it answers `Retry`. The `Injector` claims with a weak CAS,
/// which Miri makes fail now and then even with no other thread about.
fn settled<T>(mut steal: impl FnMut() -> Steal<T>) -> Steal<T> {
    loop {
        match steal() {
            Steal::Retry => {}
            done => return done,
        }
    }
}

/// Zero-sized items through every way in and out of a `Worker` (push, pop, steal,
/// both batch steals), across growth (past the 64 slots of a new deque) and shrinking:
/// each taken item is dropped by its taker, none by the deque, and dropping the
/// deque (and the batch destination) drops each of the rest once.
#[test]
fn zero_sized_items_in_a_worker_are_each_dropped_once() {
    type U = Unit<0>;
    assert_eq!(std::mem::size_of::<U>(), 0);
    let k = n(600, 150);
    for fifo in [false, true] {
        let start = unit_drops(0);
        let dropped = || unit_drops(0) - start;
        let w = worker::<U>(fifo);
        let s = w.stealer();
        let dest = worker::<U>(!fifo);
        for i in 0..k {
            if i == 0 {
                assert!(w.push_was_empty(Unit));
            } else {
                w.push(Unit);
            }
        }
        assert_eq!((w.len(), dropped()), (k, 0), "a resize dropped an item");
        let mut taken = 0;
        for _ in 0..k / 6 {
            assert!(w.pop().is_some());
            assert!(s.steal().is_success());
            taken += 2;
        }
        assert_eq!(dropped(), taken);
        // Half of what is left, at most 32; then at most 7, the oldest returned.
        assert!(s.steal_batch(&dest).is_success());
        assert_eq!(dest.len(), 32);
        assert!(s.steal_batch_with_limit_and_pop(&dest, 7).is_success());
        taken += 1;
        assert_eq!(dest.len(), 38);
        assert_eq!(w.len(), k - taken - 38);
        // The owner pops until the deque holds a quarter of its buffer or less, so
        // that it shrinks, then a few steals.
        while w.len() > 10 {
            assert!(w.pop().is_some());
            taken += 1;
        }
        for _ in 0..3 {
            assert!(s.steal().is_success());
            taken += 1;
        }
        assert!(dest.pop().is_some());
        taken += 1;
        assert_eq!(dropped(), taken, "only the takers dropped items");
        assert_eq!(w.len() + dest.len() + taken, k);
        drop(w);
        assert_eq!(dropped(), taken, "the stealer keeps the deque alive");
        drop(s);
        drop(dest);
        assert_eq!(dropped(), k, "flavor fifo={fifo}");
    }
}

/// The same through an `Injector`, over several blocks of 63 slots: steals, both
/// batch steals, and the drop of a queue whose items span blocks.
#[test]
fn zero_sized_items_in_an_injector_are_each_dropped_once() {
    type U = Unit<1>;
    let k = n(400, 200);
    let start = unit_drops(1);
    let dropped = || unit_drops(1) - start;
    let q = Injector::<U>::new();
    for _ in 0..k {
        q.push(Unit);
    }
    assert_eq!(q.len(), k);
    let dest = Worker::new_fifo();
    let mut taken = 0;
    for _ in 0..70 {
        assert!(settled(|| q.steal()).is_success());
        taken += 1;
    }
    assert!(settled(|| q.steal_batch(&dest)).is_success());
    assert!(settled(|| q.steal_batch_with_limit_and_pop(&dest, 5)).is_success());
    taken += 1;
    let moved = dest.len();
    assert!(moved >= 1, "a batch of the first moved nothing");
    assert_eq!(q.len(), k - taken - moved);
    assert_eq!(dropped(), taken);
    drop(dest);
    assert_eq!(dropped(), taken + moved);
    drop(q);
    assert_eq!(dropped(), k);
}

/// Zero-sized items taken by an owner and two thieves (single and batch steals) at
/// once: the takes and the drop of what is left add up to the items pushed, and each
/// was dropped once.
#[test]
fn zero_sized_items_under_concurrent_steals_are_each_dropped_once() {
    type U = Unit<2>;
    let k = n(20_000, 200);
    for fifo in [false, true] {
        let start = unit_drops(2);
        let w = worker::<U>(fifo);
        let done = Arc::new(AtomicBool::new(false));
        let thieves: Vec<_> = (0..2)
            .map(|t| {
                let s = w.stealer();
                let done = done.clone();
                thread::spawn(move || {
                    let mine = Worker::new_lifo();
                    let mut took = 0usize;
                    while !done.load(Ordering::SeqCst) {
                        let r = if t == 0 {
                            s.steal()
                        } else {
                            s.steal_batch_with_limit_and_pop(&mine, 4)
                        };
                        match r {
                            Steal::Success(_) => took += 1,
                            _ => thread::yield_now(),
                        }
                        while mine.pop().is_some() {
                            took += 1;
                        }
                    }
                    took
                })
            })
            .collect();
        let mut own = 0;
        for i in 0..k {
            w.push(Unit);
            if i % 3 == 0 && w.pop().is_some() {
                own += 1;
            }
        }
        done.store(true, Ordering::SeqCst);
        let stolen: usize = thieves.into_iter().map(|t| t.join().unwrap()).sum();
        let left = w.len();
        assert_eq!(own + stolen + left, k);
        assert_eq!(unit_drops(2) - start, own + stolen);
        drop(w);
        assert_eq!(unit_drops(2) - start, k, "flavor fifo={fifo}");
    }
}

/// Runs `f`, which must panic with the bomb's message.
fn expect_the_bomb(f: impl FnOnce()) {
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .expect_err("the bomb's drop did not panic");
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    assert_eq!(msg, Some(BOMB));
}

/// A value whose `Drop` panics does not leak the values behind it: the drop of a
/// deque's last handle (the `Worker` or a `Stealer`) drops every other value left and
/// frees the buffer during the unwind, as a `Vec` does, and lets the panic through.
/// The deque has grown (from 64 slots to 512; to 128 under Miri) and shrunk to half
/// of that before, and the bomb is the first, a middle and the last value left.
/// Every value is dropped exactly once.
#[test]
fn a_panicking_drop_does_not_leak_the_rest_of_a_worker() {
    let k = n(320, 120);
    for fifo in [false, true] {
        // Steals take `[0, k/4)`; the pops `[k/4, 3k/4)` from a FIFO owner, the
        // newest half from a LIFO one.
        let left = if fifo { 3 * k / 4..k } else { k / 4..k / 2 };
        for bomb in [left.start, (left.start + left.end) / 2, left.end - 1] {
            for stealer_last in [false, true] {
                let log = DropLog::with_bomb(k, Some(bomb));
                let w = worker(fifo);
                let s = w.stealer();
                let s2 = s.clone();
                for i in 0..k {
                    w.push(log.item(i));
                }
                for _ in 0..k / 4 {
                    drop(s.steal());
                }
                for _ in 0..k / 2 {
                    drop(w.pop());
                }
                assert_eq!(w.len(), left.len());
                assert_eq!(log.count.load(Ordering::SeqCst), 3 * k / 4);
                drop(s2);
                if stealer_last {
                    drop(w);
                    expect_the_bomb(move || drop(s));
                } else {
                    drop(s);
                    expect_the_bomb(move || drop(w));
                }
                log.assert_all_dropped_once();
            }
        }
    }
}

/// The same for an `Injector` whose values span several blocks: the bomb in the
/// first, a middle and the last block left.
#[test]
fn a_panicking_drop_does_not_leak_the_rest_of_an_injector() {
    let k = n(400, 200);
    let first = 70;
    for bomb in [first, (first + k) / 2, k - 1] {
        let log = DropLog::with_bomb(k, Some(bomb));
        let q = Injector::new();
        for i in 0..k {
            q.push(log.item(i));
        }
        for _ in 0..first {
            assert!(settled(|| q.steal()).is_success());
        }
        assert_eq!(q.len(), k - first);
        expect_the_bomb(move || drop(q));
        log.assert_all_dropped_once();
    }
}

#[test]
fn injector_fifo_and_batches() {
    let q = Injector::new();
    let k = n(1000, 150);
    for i in 0..k {
        q.push(i);
    }
    assert_eq!(q.len(), k);
    let mut seen = Vec::new();
    let w = Worker::new_fifo();
    loop {
        match q.steal_batch_with_limit_and_pop(&w, 7) {
            Steal::Success(v) => {
                seen.push(v);
                while let Some(v) = w.pop() {
                    seen.push(v);
                }
            }
            Steal::Empty => break,
            Steal::Retry => {}
        }
    }
    assert_eq!(seen, (0..k).collect::<Vec<_>>());
    assert!(q.is_empty());
}

/// Owner pushes and pops, `thieves` stealers steal (single and batch), every item is
/// taken exactly once and nothing is lost.
fn owner_and_stealers(lifo: bool, thieves: usize) {
    let total = n(100_000, 300);
    let log = DropLog::new(total);
    let taken: Arc<Vec<AtomicBool>> =
        Arc::new((0..total).map(|_| AtomicBool::new(false)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let w = if lifo {
        Worker::new_lifo()
    } else {
        Worker::new_fifo()
    };
    let handles: Vec<_> = (0..thieves)
        .map(|t| {
            let s: Stealer<Item> = w.stealer();
            let taken = taken.clone();
            let done = done.clone();
            thread::spawn(move || {
                let mine = Worker::new_lifo();
                let mut count = 0usize;
                let mut take = |it: Item| {
                    assert!(!taken[*it.id].swap(true, Ordering::SeqCst), "taken twice");
                    count += 1;
                };
                loop {
                    let r = match t % 3 {
                        0 => s.steal(),
                        1 => s.steal_batch_and_pop(&mine),
                        _ => s.steal_batch_with_limit(&mine, 3).map_unit(&mine),
                    };
                    match r {
                        Steal::Success(it) => take(it),
                        Steal::Retry => thread::yield_now(),
                        Steal::Empty => {
                            if done.load(Ordering::SeqCst) && s.is_empty() {
                                break;
                            }
                            thread::yield_now();
                        }
                    }
                    while let Some(it) = mine.pop() {
                        take(it);
                    }
                }
                count
            })
        })
        .collect();
    let mut own = 0;
    for i in 0..total {
        w.push(log.item(i));
        if i % 3 == 0 {
            if let Some(it) = w.pop() {
                assert!(!taken[*it.id].swap(true, Ordering::SeqCst), "taken twice");
                own += 1;
            }
        }
    }
    while let Some(it) = w.pop() {
        assert!(!taken[*it.id].swap(true, Ordering::SeqCst), "taken twice");
        own += 1;
    }
    done.store(true, Ordering::SeqCst);
    let stolen: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(own + stolen, total);
    assert!(taken.iter().all(|t| t.load(Ordering::SeqCst)));
    drop(w);
    log.assert_all_dropped_once();
}

trait MapUnit {
    fn map_unit(self, mine: &Worker<Item>) -> Steal<Item>;
}

impl MapUnit for Steal<()> {
    fn map_unit(self, mine: &Worker<Item>) -> Steal<Item> {
        match self {
            Steal::Success(()) => Steal::Success(mine.pop().expect("batch moved an item")),
            Steal::Empty => Steal::Empty,
            Steal::Retry => Steal::Retry,
        }
    }
}

#[test]
fn lifo_owner_1_stealer() {
    owner_and_stealers(true, 1);
}

#[test]
fn lifo_owner_3_stealers() {
    owner_and_stealers(true, 3);
}

#[test]
fn lifo_owner_7_stealers() {
    owner_and_stealers(true, 7);
}

#[test]
fn fifo_owner_3_stealers() {
    owner_and_stealers(false, 3);
}

#[test]
fn fifo_owner_7_stealers() {
    owner_and_stealers(false, 7);
}

/// Growth and shrink while stealers run: bursts of pushes (the buffer grows), then
/// the owner pops most of them (it shrinks), stealers active all along.
#[test]
fn growth_and_shrink_under_steals() {
    let bursts = n(200, 6);
    let burst = n(2000, 70);
    let w = Worker::new_lifo();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let done = Arc::new(AtomicBool::new(false));
    let thieves: Vec<_> = (0..3)
        .map(|_| {
            let s = w.stealer();
            let seen = seen.clone();
            let done = done.clone();
            thread::spawn(move || loop {
                match s.steal() {
                    Steal::Success(v) => assert!(seen.lock().unwrap().insert(v)),
                    _ if done.load(Ordering::SeqCst) && s.is_empty() => break,
                    _ => thread::yield_now(),
                }
            })
        })
        .collect();
    let mut next = 0usize;
    for _ in 0..bursts {
        for _ in 0..burst {
            w.push(next);
            next += 1;
        }
        while w.len() > 2 {
            if let Some(v) = w.pop() {
                assert!(seen.lock().unwrap().insert(v));
            }
        }
    }
    while let Some(v) = w.pop() {
        assert!(seen.lock().unwrap().insert(v));
    }
    done.store(true, Ordering::SeqCst);
    for t in thieves {
        t.join().unwrap();
    }
    assert_eq!(seen.lock().unwrap().len(), next);
}

#[test]
fn injector_mpmc_exactly_once() {
    let per = n(20_000, 100);
    let producers = 3;
    let log = DropLog::new(per * producers);
    let q = Arc::new(Injector::new());
    let taken: Arc<Vec<AtomicBool>> = Arc::new(
        (0..per * producers)
            .map(|_| AtomicBool::new(false))
            .collect(),
    );
    let done = Arc::new(AtomicUsize::new(0));
    let ps: Vec<_> = (0..producers)
        .map(|p| {
            let q = q.clone();
            let log = log.clone();
            let done = done.clone();
            thread::spawn(move || {
                for i in 0..per {
                    q.push(log.item(p * per + i));
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let cs: Vec<_> = (0..3)
        .map(|c| {
            let q = q.clone();
            let taken = taken.clone();
            let done = done.clone();
            thread::spawn(move || {
                let w = Worker::new_fifo();
                let mut n = 0;
                loop {
                    let r = if c == 0 {
                        q.steal()
                    } else {
                        q.steal_batch_and_pop(&w)
                    };
                    match r {
                        Steal::Success(it) => {
                            assert!(!taken[*it.id].swap(true, Ordering::SeqCst));
                            n += 1;
                        }
                        Steal::Retry => thread::yield_now(),
                        Steal::Empty
                            if done.load(Ordering::SeqCst) == producers && q.is_empty() =>
                        {
                            break
                        }
                        Steal::Empty => thread::yield_now(),
                    }
                    while let Some(it) = w.pop() {
                        assert!(!taken[*it.id].swap(true, Ordering::SeqCst));
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    for p in ps {
        p.join().unwrap();
    }
    let got: usize = cs.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(got, per * producers);
    drop(q);
    log.assert_all_dropped_once();
}

/// The sequential specification of a LIFO or FIFO deque, for the linearizability
/// checker. A steal that returned `Retry` is retried inside one recorded operation, so
/// a recorded steal is `Some` (took the oldest) or `None` (was empty).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct DequeModel {
    fifo: bool,
    items: std::collections::VecDeque<u32>,
}

#[derive(Clone, Debug)]
enum DequeOp {
    Push(u32),
    Pop,
    Steal,
    /// A batch steal with this limit that took this many items in all (filled in
    /// from the result before checking): returns the oldest and, oldest first, the
    /// items that went to the thief's own queue.
    StealBatch(usize, usize),
}

impl lincheck::Model for DequeModel {
    type Op = DequeOp;
    type Ret = (Option<u32>, Vec<u32>);
    fn step(&mut self, op: &DequeOp) -> (Option<u32>, Vec<u32>) {
        match op {
            DequeOp::Push(v) => {
                self.items.push_back(*v);
                (None, Vec::new())
            }
            DequeOp::Pop if self.fifo => (self.items.pop_front(), Vec::new()),
            DequeOp::Pop => (self.items.pop_back(), Vec::new()),
            DequeOp::Steal => (self.items.pop_front(), Vec::new()),
            DequeOp::StealBatch(limit, took) => {
                // A batch takes at least one item (if any) and at most half (rounded
                // up) and at most `limit`: any such count is a correct answer.
                let most = self.items.len().div_ceil(2).min(*limit);
                if self.items.is_empty() {
                    return (None, Vec::new());
                }
                if *took == 0 || *took > most {
                    return (None, vec![u32::MAX]); // matches no recorded result
                }
                let first = self.items.pop_front();
                let rest = (1..*took).filter_map(|_| self.items.pop_front()).collect();
                (first, rest)
            }
        }
    }
}

/// Owner and two thieves on one deque, histories of 16 operations checked for
/// linearizability against `DequeModel`, many times over.
fn linearizable(fifo: bool) {
    for round in 0..n(300, 4) {
        let w = if fifo {
            Worker::new_fifo()
        } else {
            Worker::new_lifo()
        };
        // A few items to start with, so thieves have work from the first moment.
        let rec = Arc::new(lincheck::Recorder::default());
        for i in 0..3 {
            rec.record(0, DequeOp::Push(i), || {
                w.push(i);
                (None, Vec::new())
            });
        }
        let thieves: Vec<_> = (1..3)
            .map(|t| {
                let s = w.stealer();
                let rec = rec.clone();
                thread::spawn(move || {
                    let mine = Worker::new_lifo();
                    for k in 0..3 {
                        let batch = (t + k + round) % 2 == 0;
                        let op = if batch {
                            DequeOp::StealBatch(2, 0)
                        } else {
                            DequeOp::Steal
                        };
                        rec.record(t, op, || loop {
                            let r = if batch {
                                s.steal_batch_with_limit_and_pop(&mine, 2)
                            } else {
                                s.steal()
                            };
                            match r {
                                Steal::Success(v) => {
                                    // `mine` is LIFO: its pops come newest first.
                                    let mut moved = Vec::new();
                                    while let Some(x) = mine.pop() {
                                        moved.push(x);
                                    }
                                    moved.reverse();
                                    break (Some(v), moved);
                                }
                                Steal::Empty => break (None, Vec::new()),
                                Steal::Retry => thread::yield_now(),
                            }
                        });
                    }
                })
            })
            .collect();
        for i in 3..7 {
            rec.record(0, DequeOp::Push(i), || {
                w.push(i);
                (None, Vec::new())
            });
            if i % 2 == 0 {
                rec.record(0, DequeOp::Pop, || (w.pop(), Vec::new()));
            }
        }
        for t in thieves {
            t.join().unwrap();
        }
        // The owner drains what is left, so an item lost or duplicated late shows.
        while rec
            .record(0, DequeOp::Pop, || (w.pop(), Vec::new()))
            .0
            .is_some()
        {}
        let mut history = rec.history();
        for e in &mut history {
            if let DequeOp::StealBatch(_, took) = &mut e.op {
                *took = e.ret.0.map_or(0, |_| e.ret.1.len() + 1);
            }
        }
        let init = DequeModel {
            fifo,
            items: Default::default(),
        };
        if let Err(e) = lincheck::check(init, &history) {
            panic!("round {round}: {e}");
        }
    }
}

#[test]
fn linearizable_lifo() {
    linearizable(false);
}

#[test]
fn linearizable_fifo() {
    linearizable(true);
}

#[test]
fn debug_is_opaque() {
    let w = Worker::<u8>::new_lifo();
    assert!(format!("{w:?}").starts_with("Worker"));
    assert!(format!("{:?}", w.stealer()).starts_with("Stealer"));
    assert!(format!("{:?}", Injector::<u8>::new()).starts_with("Injector"));
}

#[cfg(all(target_os = "linux", not(miri), not(atomkit_tsan)))]
#[path = "support/suspend.rs"]
mod suspend;

/// Lets the suspension tests tell a thread suspended inside the allocator apart.
#[cfg(all(target_os = "linux", not(miri), not(atomkit_tsan)))]
#[global_allocator]
static ALLOC: suspend::MarkAllocations = suspend::MarkAllocations;

/// Suspends a thread with a signal at an arbitrary instruction of its push/steal loop
/// on an Injector and checks whether another thread can still finish 200 push+steal
/// pairs: the Injector's lock-freedom, against crossbeam-deque's, which waits for a
/// claimed slot's write and for a block's successor.
#[cfg(all(target_os = "linux", not(miri), not(atomkit_tsan)))]
mod injector_suspended_at_any_instruction {
    use super::suspend;
    use std::sync::Arc;
    use std::time::Duration;

    /// A large payload widens the window between a push's claim and its write.
    type Payload = [u64; 256];

    trait Queue: Send + Sync + 'static {
        fn push(&self, v: Payload);
        /// `Some(true)` on an item, `Some(false)` on empty, `None` on a retry.
        fn steal(&self) -> Option<bool>;
    }

    impl Queue for atomkit::deque::Injector<Payload> {
        fn push(&self, v: Payload) {
            atomkit::deque::Injector::push(self, v)
        }
        fn steal(&self) -> Option<bool> {
            match atomkit::deque::Injector::steal(self) {
                atomkit::deque::Steal::Success(_) => Some(true),
                atomkit::deque::Steal::Empty => Some(false),
                atomkit::deque::Steal::Retry => None,
            }
        }
    }

    impl Queue for crossbeam_deque::Injector<Payload> {
        fn push(&self, v: Payload) {
            crossbeam_deque::Injector::push(self, v)
        }
        fn steal(&self) -> Option<bool> {
            match crossbeam_deque::Injector::steal(self) {
                crossbeam_deque::Steal::Success(_) => Some(true),
                crossbeam_deque::Steal::Empty => Some(false),
                crossbeam_deque::Steal::Retry => None,
            }
        }
    }

    /// Steals until an item or `Empty`; 1 if it took an item.
    fn steal_one<Q: Queue>(q: &Q) -> u64 {
        loop {
            if let Some(took) = q.steal() {
                return took as u64;
            }
        }
    }

    fn run<Q: Queue>(q: Q, trials: u32, patience: Duration) -> suspend::Outcome {
        let q = Arc::new(q);
        let victim = q.clone();
        let step = move || {
            suspend::in_op(|| victim.push([1; 256]));
            1 + suspend::in_op(|| steal_one(&*victim))
        };
        let job = move || {
            (0..200u64)
                .map(|i| {
                    q.push([i; 256]);
                    1 + steal_one(&*q)
                })
                .sum()
        };
        suspend::run(step, job, trials, patience, 1)
    }

    /// atomkit: however the victim is suspended, the other thread always finishes.
    #[test]
    fn atomkit_never_wedges() {
        let o = run(
            atomkit::deque::Injector::new(),
            300,
            Duration::from_secs(10),
        );
        // 200 pushes and a steal after each; the victim's claimed slot is skipped.
        o.assert_never_wedged("atomkit Injector", 300, 300);
    }

    /// crossbeam-deque: a suspension between a push's claim and its write leaves a
    /// stealer of that slot spinning until the victim resumes. Bounded: each wait
    /// gives up after 1 s and then resumes the victim.
    #[test]
    fn crossbeam_wedges_behind_a_suspended_thread() {
        let o = run(
            crossbeam_deque::Injector::new(),
            400,
            Duration::from_secs(1),
        );
        o.assert_wedged("crossbeam-deque's Injector");
    }
}

/// Suspends a stealer with a signal at an arbitrary instruction of its steal loop
/// (single steals and batch steals, in turn) while an owner thread keeps its deque
/// fed, and checks that another stealer can still take 200 items meanwhile. A
/// stealer suspended between its claim and its release holds a slot: the owner must
/// copy the deque when it laps that slot rather than wait for it, or the deque runs
/// dry and the other stealer never finishes.
#[cfg(all(target_os = "linux", not(miri), not(atomkit_tsan)))]
mod stealer_suspended_at_any_instruction {
    use super::suspend;
    use atomkit::deque::{Steal, Worker};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    /// A large payload widens the window between a steal's claim and its release
    /// (the read of the item), where the stealer holds a slot.
    type Payload = [u64; 64];

    thread_local! {
        /// The victim's own deque for batch steals.
        static LOCAL: Worker<Payload> = Worker::new_fifo();
        static TURN: Cell<u64> = const { Cell::new(0) };
    }

    fn run(fifo: bool) -> suspend::Outcome {
        let w = if fifo {
            Worker::<Payload>::new_fifo()
        } else {
            Worker::<Payload>::new_lifo()
        };
        let stealer = w.stealer();
        let stop = Arc::new(AtomicBool::new(false));
        // The owner keeps 32 to 64 items in the deque, and pops one now and then.
        let owner = {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if w.len() < 64 {
                        for _ in 0..32 {
                            w.push([i; 64]);
                            i += 1;
                        }
                        let _ = w.pop();
                    } else {
                        thread::yield_now();
                    }
                }
            })
        };
        let victim = stealer.clone();
        let step = move || {
            let turn = TURN.with(|t| {
                t.set(t.get() + 1);
                t.get()
            });
            if turn % 2 == 0 {
                LOCAL.with(|local| {
                    let got = suspend::in_op(|| victim.steal_batch_and_pop(local).is_success());
                    let mut n = u64::from(got);
                    while local.pop().is_some() {
                        n += 1;
                    }
                    n
                })
            } else {
                u64::from(suspend::in_op(|| victim.steal().is_success()))
            }
        };
        let job = move || {
            let mut took = 0u64;
            while took < 200 {
                if let Steal::Success(_) = stealer.steal() {
                    took += 1;
                }
            }
            took
        };
        let out = suspend::run(step, job, 300, Duration::from_secs(2), 1);
        stop.store(true, Ordering::Relaxed);
        owner.join().unwrap();
        out
    }

    #[test]
    fn lifo_owner_never_waits_for_a_suspended_stealer() {
        run(false).assert_never_wedged("atomkit Worker (LIFO) and Stealer", 300, 200);
    }

    #[test]
    fn fifo_owner_never_waits_for_a_suspended_stealer() {
        run(true).assert_never_wedged("atomkit Worker (FIFO) and Stealer", 300, 200);
    }
}

/// Big items are stolen without putting a chunk of them on the stack: 64 KiB items
/// stolen one by one and in batches from a thread with a 1 MiB stack (a chunk of 32
/// of them would need 2 MiB).
#[test]
#[cfg_attr(miri, ignore = "Miri does not model the stack's size")]
#[cfg_attr(
    atomkit_tsan,
    ignore = "ThreadSanitizer's instrumented frames need far more stack for the same moves"
)]
fn big_items_steal_without_overflowing_the_stack() {
    const BIG: usize = 64 * 1024;
    let w = Worker::<Box<[u8; BIG]>>::new_fifo();
    let raw = Worker::<[u8; BIG]>::new_fifo();
    for i in 0..4u8 {
        w.push(Box::new([i; BIG]));
    }
    raw.push([7; BIG]);
    raw.push([8; BIG]);
    let (s, rs) = (w.stealer(), raw.stealer());
    thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            assert_eq!(s.steal().success().map(|b| b[0]), Some(0));
            assert_eq!(rs.steal().success().map(|b| b[0]), Some(7));
            let dest = Worker::new_fifo();
            assert!(rs.steal_batch(&dest).is_success());
            assert_eq!(dest.pop().map(|b| b[0]), Some(8));
        })
        .unwrap()
        .join()
        .unwrap();
}
