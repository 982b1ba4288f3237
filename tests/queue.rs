//! Integration tests of `atomkit::queue::ArrayQueue`: the API, values counted by their
//! drops (nothing lost, duplicated or dropped twice) under MPMC load, and the
//! lock-freedom tests: a thread suspended midway never stops the others (and the
//! same scenario wedges crossbeam's `ArrayQueue`).

#[path = "support/lincheck.rs"]
mod lincheck;

use atomkit::queue::{ArrayQueue, MAX_CAPACITY};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

/// A payload that counts its drops; boxed so that Miri tracks each allocation.
#[derive(Debug)]
struct Counted {
    id: Box<u64>,
    drops: Arc<AtomicUsize>,
}

impl Counted {
    fn new(id: u64, drops: &Arc<AtomicUsize>) -> Self {
        Counted {
            id: Box::new(id),
            drops: drops.clone(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

fn scale(n: u64) -> u64 {
    if cfg!(miri) {
        (n / 500).max(8)
    } else {
        n
    }
}

#[test]
fn fifo_order_and_full_empty_edges() {
    let q = ArrayQueue::new(3);
    assert!(q.is_empty());
    assert_eq!(q.capacity(), 3);
    assert_eq!(q.pop(), None);
    for i in 0..3 {
        assert_eq!(q.push(i), Ok(()));
    }
    assert!(q.is_full());
    assert_eq!(q.len(), 3);
    assert_eq!(q.push(99), Err(99));
    assert_eq!(q.pop(), Some(0));
    assert_eq!(q.push(3), Ok(()));
    assert_eq!(q.len(), 3);
    assert_eq!(
        (q.pop(), q.pop(), q.pop(), q.pop()),
        (Some(1), Some(2), Some(3), None)
    );
    assert!(q.is_empty());
}

#[test]
fn capacity_one_wraps_around_many_laps() {
    let q = ArrayQueue::new(1);
    for i in 0..scale(10_000) {
        assert_eq!(q.push(i), Ok(()));
        assert_eq!(q.push(i + 1), Err(i + 1));
        assert!(q.is_full());
        assert_eq!(q.pop(), Some(i));
        assert_eq!(q.pop(), None);
    }
}

#[test]
fn odd_capacities_are_exact() {
    for cap in [1usize, 2, 3, 5, 7, 8, 9, 17, 100] {
        let q = ArrayQueue::new(cap);
        for round in 0..3 {
            for i in 0..cap {
                assert_eq!(q.push(i + round), Ok(()), "cap {cap}");
            }
            assert_eq!(q.push(0), Err(0), "cap {cap}: full at exactly cap");
            assert_eq!(q.len(), cap);
            for i in 0..cap {
                assert_eq!(q.pop(), Some(i + round));
            }
            assert_eq!(q.pop(), None);
        }
    }
}

#[test]
#[should_panic(expected = "capacity must be non-zero")]
fn zero_capacity_panics() {
    let _ = ArrayQueue::<u8>::new(0);
}

#[test]
#[should_panic(expected = "capacity overflow")]
fn huge_capacity_panics_clearly() {
    let _ = ArrayQueue::<u8>::new(usize::MAX);
}

/// The message of the panic `f` raises.
fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let payload = std::panic::catch_unwind(f).expect_err("no panic");
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast::<&str>()
            .map_or_else(|_| String::new(), |s| s.to_string()),
    }
}

/// Whether the two rings of a queue of capacity `cap` (`2 * cap.next_power_of_two()`
/// 8-byte entries each) have a size an allocation may have.
fn rings_fit(cap: usize) -> bool {
    cap.checked_next_power_of_two()
        .and_then(|n| n.checked_mul(2 * size_of::<u64>()))
        .is_some_and(|bytes| bytes <= isize::MAX as usize)
}

/// Every capacity whose rings cannot be allocated panics with the queue's own
/// message, on every target. On a 32-bit target the maximum was 2^31, and a capacity
/// above 2^30 made a ring of 2^32 entries: an arithmetic-overflow panic (in a release
/// build, a wrapped size: an empty ring, and an index out of bounds).
#[test]
fn capacities_past_the_maximum_panic_clearly_on_every_target() {
    assert!(
        rings_fit(MAX_CAPACITY),
        "the rings of the largest capacity ({MAX_CAPACITY}) cannot be allocated"
    );
    for cap in [
        MAX_CAPACITY + 1,
        (1 << 30) + 1,
        usize::MAX / 2 + 1,
        usize::MAX - 1,
        usize::MAX,
    ] {
        if cap <= MAX_CAPACITY && rings_fit(cap) {
            continue; // on a 64-bit target: a real, enormous queue
        }
        let msg = panic_message(|| drop(ArrayQueue::<u8>::new(cap)));
        assert!(
            msg.starts_with(&format!("capacity overflow: {cap} exceeds")),
            "capacity {cap}: {msg}"
        );
    }
}

#[test]
fn force_push_replaces_the_oldest() {
    let q = ArrayQueue::new(2);
    assert_eq!(q.force_push(1), None);
    assert_eq!(q.force_push(2), None);
    assert_eq!(q.force_push(3), Some(1));
    assert_eq!(q.force_push(4), Some(2));
    assert_eq!(q.len(), 2);
    assert_eq!(q.pop(), Some(3));
    assert_eq!(q.force_push(5), None);
    assert_eq!(q.into_iter().collect::<Vec<_>>(), [4, 5]);
}

#[test]
fn drop_and_into_iter_drop_each_value_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let q = ArrayQueue::new(8);
        for i in 0..5 {
            q.push(Counted::new(i, &drops)).unwrap();
        }
        drop(q.pop());
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }
    assert_eq!(drops.load(Ordering::Relaxed), 5, "Drop drops what is left");

    drops.store(0, Ordering::Relaxed);
    let q = ArrayQueue::new(4);
    for i in 0..4 {
        q.push(Counted::new(i, &drops)).unwrap();
    }
    let mut it = q.into_iter();
    assert_eq!(*it.next().unwrap().id, 0);
    assert_eq!(drops.load(Ordering::Relaxed), 1);
    drop(it);
    assert_eq!(
        drops.load(Ordering::Relaxed),
        4,
        "the iterator drops what it did not yield"
    );

    drops.store(0, Ordering::Relaxed);
    let q = ArrayQueue::new(2);
    q.push(Counted::new(1, &drops)).unwrap();
    q.push(Counted::new(2, &drops)).unwrap();
    let old = q.force_push(Counted::new(3, &drops)).unwrap();
    assert_eq!(*old.id, 1);
    drop(old);
    drop(q);
    assert_eq!(drops.load(Ordering::Relaxed), 3);
}

/// Zero-sized values take the same paths as any other: every one pushed is popped,
/// handed back or dropped by the queue exactly once, including across wrap-around
/// and through `force_push`.
#[test]
fn zero_sized_values_are_each_dropped_once() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    #[derive(Debug)]
    struct Unit;
    impl Drop for Unit {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::Relaxed);
        }
    }
    assert_eq!(size_of::<Unit>(), 0);
    let q = ArrayQueue::new(3);
    let mut made = 0;
    for lap in 0..scale(1_000) {
        for _ in 0..3 {
            q.push(Unit).unwrap();
            made += 1;
        }
        assert!(q.is_full());
        let refused = q.push(Unit).unwrap_err();
        made += 1;
        drop(refused);
        let old = q.force_push(Unit).expect("full: the oldest comes back");
        made += 1;
        drop(old);
        assert_eq!(q.len(), 3);
        let keep = (lap % 3) as usize;
        while q.len() > keep {
            drop(q.pop().unwrap());
        }
        assert_eq!(DROPS.load(Ordering::Relaxed), made - keep);
        while q.pop().is_some() {}
    }
    q.push(Unit).unwrap();
    q.push(Unit).unwrap();
    made += 2;
    drop(q);
    assert_eq!(
        DROPS.load(Ordering::Relaxed),
        made,
        "Drop drops what is left"
    );
}

/// A value whose `Drop` panics does not leak the values behind it: the queue's
/// `Drop` (and so a dropped `IntoIter`) drops the rest during the unwind, as a `Vec`
/// does. (It once stopped at the panic and leaked them.)
#[test]
fn a_panicking_drop_does_not_leak_the_rest() {
    struct Bomb(bool, Arc<AtomicUsize>);
    impl Drop for Bomb {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::Relaxed);
            if self.0 {
                panic!("boom");
            }
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let q = ArrayQueue::new(4);
    q.push(Bomb(true, drops.clone())).ok().unwrap();
    for _ in 0..3 {
        q.push(Bomb(false, drops.clone())).ok().unwrap();
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(q)));
    assert!(r.is_err());
    assert_eq!(
        drops.load(Ordering::Relaxed),
        4,
        "values behind the panic leaked"
    );

    drops.store(0, Ordering::Relaxed);
    let q = ArrayQueue::new(4);
    for i in 0..4 {
        q.push(Bomb(i == 1, drops.clone())).ok().unwrap();
    }
    let mut it = q.into_iter();
    drop(it.next());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(it)));
    assert!(r.is_err());
    assert_eq!(
        drops.load(Ordering::Relaxed),
        4,
        "values behind the panic leaked"
    );
}

#[test]
fn debug_is_opaque() {
    let q = ArrayQueue::new(5);
    q.push(String::from("secret")).unwrap();
    let s = format!("{q:?}");
    assert!(s.contains("ArrayQueue") && s.contains("capacity: 5") && !s.contains("secret"));
}

/// Single-threaded random operations against `VecDeque` (the fuzz target does more).
#[test]
fn matches_vecdeque() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for cap in [1usize, 2, 3, 4, 16, 33] {
        let q = ArrayQueue::new(cap);
        let mut m = VecDeque::new();
        for step in 0..scale(20_000) {
            match rnd() % 4 {
                0 | 1 => {
                    let r = q.push(step);
                    if m.len() < cap {
                        assert_eq!(r, Ok(()));
                        m.push_back(step);
                    } else {
                        assert_eq!(r, Err(step));
                    }
                }
                2 => assert_eq!(q.pop(), m.pop_front()),
                _ => {
                    let r = q.force_push(step);
                    let expect = if m.len() == cap { m.pop_front() } else { None };
                    m.push_back(step);
                    assert_eq!(r, expect);
                }
            }
            assert_eq!(q.len(), m.len());
            assert_eq!(q.is_full(), m.len() == cap);
        }
    }
}

/// The sequential specification for the linearizability checker: a FIFO that is
/// never full in these histories.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Fifo(VecDeque<u64>);

#[derive(Clone, Debug)]
enum FifoOp {
    Push(u64),
    Pop,
}

impl lincheck::Model for Fifo {
    type Op = FifoOp;
    type Ret = Option<u64>;
    fn step(&mut self, op: &FifoOp) -> Option<u64> {
        match *op {
            FifoOp::Push(v) => {
                self.0.push_back(v);
                None
            }
            FifoOp::Pop => self.0.pop_front(),
        }
    }
}

/// Stress: many short histories of 3 threads x 5 operations on real threads, each
/// checked for linearizability against a FIFO. The threads start together (without
/// the barrier they ran one after another in almost every round, and the check
/// passed on sequential histories), and each history ends with a drain, so that a
/// value lost or duplicated near the end shows too.
#[test]
fn histories_are_linearizable() {
    for round in 0..scale(300) {
        let q = Arc::new(ArrayQueue::new(16));
        let rec = Arc::new(lincheck::Recorder::default());
        let start = Arc::new(std::sync::Barrier::new(3));
        let hs: Vec<_> = (0..3u64)
            .map(|t| {
                let (q, rec, start) = (q.clone(), rec.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    for i in 0..5u64 {
                        if (t + i + round) % 2 == 0 {
                            let v = t * 10 + i;
                            rec.record(t as usize, FifoOp::Push(v), || {
                                q.push(v).unwrap();
                                None
                            });
                        } else {
                            rec.record(t as usize, FifoOp::Pop, || q.pop());
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        loop {
            let got = rec.record(0, FifoOp::Pop, || q.pop());
            if got.is_none() {
                break;
            }
        }
        if let Err(e) = lincheck::check(Fifo(VecDeque::new()), &rec.history()) {
            panic!("round {round}: {e}");
        }
    }
}

/// `producers` threads push `per` values each, `consumers` threads pop until all are
/// taken; every value arrives exactly once, in per-producer FIFO order, and every
/// payload is dropped exactly once.
fn mpmc(producers: u64, consumers: u64, cap: usize, per: u64) {
    let drops = Arc::new(AtomicUsize::new(0));
    let q = Arc::new(ArrayQueue::new(cap));
    let taken = Arc::new(AtomicUsize::new(0));
    let total = (producers * per) as usize;
    let mut handles = Vec::new();
    for p in 0..producers {
        let (q, drops) = (q.clone(), drops.clone());
        handles.push(thread::spawn(move || {
            for i in 0..per {
                let mut v = Counted::new(p << 32 | i, &drops);
                loop {
                    match q.push(v) {
                        Ok(()) => break,
                        Err(back) => {
                            v = back;
                            thread::yield_now();
                        }
                    }
                }
            }
            Vec::new()
        }));
    }
    for _ in 0..consumers {
        let (q, taken) = (q.clone(), taken.clone());
        handles.push(thread::spawn(move || {
            let mut got = Vec::new();
            while taken.load(Ordering::Relaxed) < total {
                match q.pop() {
                    Some(v) => {
                        taken.fetch_add(1, Ordering::Relaxed);
                        got.push(*v.id);
                    }
                    None => thread::yield_now(),
                }
            }
            got
        }));
    }
    let mut seen = vec![0u8; total];
    for h in handles {
        let got = h.join().unwrap();
        // FIFO per producer as seen by one consumer.
        let mut last = vec![None; producers as usize];
        for id in got {
            let (p, i) = ((id >> 32) as usize, id & 0xFFFF_FFFF);
            assert!(
                last[p].is_none_or(|l| l < i),
                "producer {p}'s values out of order"
            );
            last[p] = Some(i);
            seen[p * per as usize + i as usize] += 1;
        }
    }
    assert!(seen.iter().all(|&c| c == 1), "every value exactly once");
    assert!(q.is_empty());
    assert_eq!(q.pop().map(|v| *v.id), None);
    assert_eq!(
        drops.load(Ordering::Relaxed),
        total,
        "each payload dropped once"
    );
}

#[test]
fn mpmc_1p1c() {
    mpmc(1, 1, 16, scale(100_000));
}

#[test]
fn mpmc_4p4c_cap_1024() {
    mpmc(4, 4, 1024, scale(50_000));
}

#[test]
fn mpmc_4p4c_cap_2() {
    mpmc(4, 4, 2, scale(20_000));
}

#[test]
fn mpmc_8p8c_cap_16() {
    mpmc(8, 8, 16, scale(20_000));
}

#[test]
fn mpmc_cap_1_oversubscribed() {
    mpmc(3, 3, 1, scale(10_000));
}

/// Racing `force_push`es and `pop`s: every value is either popped, returned by a
/// `force_push`, or left in the queue; none twice.
#[test]
fn force_push_races_lose_nothing() {
    let drops = Arc::new(AtomicUsize::new(0));
    let q = Arc::new(ArrayQueue::new(3));
    let per = scale(20_000);
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let (q, drops) = (q.clone(), drops.clone());
            thread::spawn(move || {
                let mut out = Vec::new();
                for i in 0..per {
                    if t % 2 == 0 {
                        if let Some(v) = q.force_push(Counted::new(t << 32 | i, &drops)) {
                            out.push(*v.id);
                        }
                    } else if let Some(v) = q.pop() {
                        out.push(*v.id);
                    }
                }
                out
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let q = Arc::try_unwrap(q).unwrap();
    all.extend(q.into_iter().map(|v| *v.id));
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "no value twice");
    assert_eq!(all.len() as u64, 2 * per, "no value lost");
    assert_eq!(drops.load(Ordering::Relaxed) as u64, 2 * per);
}

/// Suspends a thread with a signal at an arbitrary instruction of its push/pop loop
/// and checks whether another thread can still finish 200 push+pop pairs.
#[cfg(all(target_os = "linux", not(miri), not(atomkit_tsan)))]
#[path = "support/suspend.rs"]
mod suspend;

/// Lets the suspension tests tell a thread suspended inside the allocator apart.
#[cfg(all(target_os = "linux", not(miri), not(atomkit_tsan)))]
#[global_allocator]
static ALLOC: suspend::MarkAllocations = suspend::MarkAllocations;

#[cfg(all(target_os = "linux", not(miri), not(atomkit_tsan)))]
mod suspended_at_any_instruction {
    use super::suspend;
    use std::sync::Arc;
    use std::time::Duration;

    /// A large payload: the copy into a claimed slot widens the window in which a
    /// suspended producer holds a slot it has not filled yet.
    type Payload = [u64; 256];

    // The large payload is the point (see `Payload`).
    #[allow(clippy::result_large_err)]
    trait Queue: Send + Sync + 'static {
        fn push(&self, v: Payload) -> Result<(), Payload>;
        fn pop(&self) -> Option<Payload>;
    }

    impl Queue for atomkit::queue::ArrayQueue<Payload> {
        fn push(&self, v: Payload) -> Result<(), Payload> {
            atomkit::queue::ArrayQueue::push(self, v)
        }
        fn pop(&self) -> Option<Payload> {
            atomkit::queue::ArrayQueue::pop(self)
        }
    }

    impl Queue for crossbeam_queue::ArrayQueue<Payload> {
        fn push(&self, v: Payload) -> Result<(), Payload> {
            crossbeam_queue::ArrayQueue::push(self, v)
        }
        fn pop(&self) -> Option<Payload> {
            crossbeam_queue::ArrayQueue::pop(self)
        }
    }

    /// The victim pushes and pops in a loop; the other thread does 200 push+pop pairs
    /// (a full queue is not an error).
    fn run<Q: Queue>(
        q: Q,
        trials: u32,
        patience: Duration,
        stop_after_wedges: u32,
    ) -> suspend::Outcome {
        let q = Arc::new(q);
        let victim = q.clone();
        let step = move || {
            let mut moved = 0;
            if suspend::in_op(|| victim.push([1; 256]).is_ok()) {
                moved += 1;
            }
            if suspend::in_op(|| victim.pop().is_some()) {
                moved += 1;
            }
            moved
        };
        let job = move || {
            let mut moved = 0u64;
            for i in 0..200u64 {
                if q.push([i; 256]).is_ok() {
                    moved += 1;
                }
                if q.pop().is_some() {
                    moved += 1;
                }
            }
            moved
        };
        suspend::run(step, job, trials, patience, stop_after_wedges)
    }

    /// atomkit: however the victim is suspended, the other thread always finishes.
    #[test]
    fn atomkit_never_wedges() {
        let o = run(
            atomkit::queue::ArrayQueue::<Payload>::new(4),
            300,
            Duration::from_secs(10),
            1,
        );
        // 200 pushes and 200 pops per job; a suspended victim holds one slot at most.
        o.assert_never_wedged("atomkit ArrayQueue", 300, 200);
    }

    /// crossbeam: some suspension (a producer between claiming a slot and filling
    /// it, or a consumer between claiming and releasing one) leaves the other thread
    /// spinning until the victim resumes. Bounded: each wait gives up after 1 s and
    /// then resumes the victim, which lets the spinning thread finish.
    #[test]
    fn crossbeam_wedges_behind_a_suspended_thread() {
        let o = run(
            crossbeam_queue::ArrayQueue::<Payload>::new(4),
            400,
            Duration::from_secs(1),
            1,
        );
        o.assert_wedged("crossbeam-queue's ArrayQueue");
    }
}

/// The stall hook (`--cfg atomkit_stall`): park one thread at each internal step of
/// `push`, `pop` and `force_push` in turn, in several queue states, and check that
/// two other threads complete 2,000 operations each while it is parked.
#[cfg(atomkit_stall)]
mod stall_every_step {
    use super::*;
    use atomkit::queue::stall;
    use std::time::{Duration, Instant};

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Push,
        Pop,
        ForcePush,
    }

    /// Waits until the armed `victim` parks (the label of its point) or finishes
    /// (`None`: its step number is past the end of its path).
    fn parked_or_finished<T>(
        gate: &stall::Gate,
        victim: &thread::JoinHandle<T>,
    ) -> Option<&'static str> {
        let start = Instant::now();
        loop {
            if let Some(l) = gate.parked_at() {
                return Some(l);
            }
            if victim.is_finished() {
                return None;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "victim neither parked nor finished"
            );
            thread::sleep(Duration::from_micros(100));
        }
    }

    /// Returns the labels of the steps the victim was parked at.
    fn scenario(prefill: u64, drained: u64, op: Op) -> Vec<&'static str> {
        let cap = 4;
        let mut labels = Vec::new();
        for step in 1.. {
            let q = Arc::new(ArrayQueue::<u64>::new(cap));
            for i in 0..prefill {
                q.push(1_000_000 + i).unwrap();
            }
            for _ in 0..drained {
                q.pop().unwrap();
            }
            let gate = stall::Gate::new();
            let victim = {
                let (q, gate) = (q.clone(), gate.clone());
                thread::spawn(move || {
                    stall::arm(step, gate);
                    let r = match op {
                        Op::Push => q.push(7).err().map(|_| 1),
                        Op::Pop => q.pop().map(|_| 0),
                        Op::ForcePush => q.force_push(7).map(|_| 0),
                    };
                    stall::disarm();
                    r
                })
            };
            let label = parked_or_finished(&gate, &victim);
            let Some(label) = label else {
                victim.join().unwrap();
                break;
            };
            labels.push(label);
            // Two other threads must complete their operations while it is parked.
            let workers: Vec<_> = (0..2u64)
                .map(|w| {
                    let q = q.clone();
                    thread::spawn(move || {
                        let (mut pushed, mut popped) = (0u64, 0u64);
                        for i in 0..2_000u64 {
                            if (i + w) % 2 == 0 {
                                pushed += q.push(w << 32 | i).is_ok() as u64;
                            } else {
                                popped += q.pop().is_some() as u64;
                            }
                        }
                        (pushed, popped)
                    })
                })
                .collect();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !workers.iter().all(|w| w.is_finished()) {
                assert!(
                    Instant::now() < deadline,
                    "{op:?} with {prefill} queued: parked at step {step} ({label}), the other threads did not finish"
                );
                thread::sleep(Duration::from_millis(1));
            }
            let (mut pushed, mut popped) = (0, 0);
            for w in workers {
                let (a, b) = w.join().unwrap();
                pushed += a;
                popped += b;
            }
            assert!(pushed > 0 && popped > 0, "the other threads made progress");
            gate.release();
            let r = victim.join().unwrap();
            // Conservation: what went in either came out or is still there.
            let q = Arc::try_unwrap(q).unwrap();
            let left = q.into_iter().count() as u64;
            let victim_in = match (op, r) {
                (Op::Push, None) => 1,
                (Op::Push, Some(_)) => 0,
                (Op::Pop, Some(_)) => 0,
                (Op::Pop, None) => 0,
                (Op::ForcePush, _) => 1,
            };
            let victim_out = match (op, r) {
                (Op::Pop, Some(_)) | (Op::ForcePush, Some(_)) => 1,
                _ => 0,
            };
            assert_eq!(
                prefill - drained + pushed + victim_in,
                popped + victim_out + left,
                "{op:?} step {step}"
            );
        }
        labels
    }

    #[test]
    fn others_finish_while_one_thread_is_parked_at_every_step() {
        let mut total = 0;
        // (values pushed, values popped again, operation under test)
        for (prefill, drained, op) in [
            (0, 0, Op::Push),
            (2, 0, Op::Push),
            (4, 0, Op::Push),
            (2, 0, Op::Pop),
            (1, 1, Op::Pop),
            (4, 0, Op::ForcePush),
            (1, 0, Op::ForcePush),
        ] {
            let labels = scenario(prefill, drained, op);
            eprintln!(
                "{op:?} with {} queued: parked at {} steps: {labels:?}",
                prefill - drained,
                labels.len()
            );
            assert!(!labels.is_empty());
            total += labels.len();
        }
        assert!(total >= 20);
    }

    /// The channel's closed path: a sender parked at each step of its push in turn,
    /// the channel closed, and a receiver that must drain it and see it closed while
    /// the sender stays parked (it never waits for a send in progress). The parked
    /// send then either got its value in before the close (and it was received) or
    /// fails as closed.
    #[test]
    fn a_closed_channel_drains_without_waiting_for_a_parked_sender() {
        use atomkit::channel::{bounded, TryRecvError};
        use std::sync::mpsc;
        let mut parked_at = Vec::new();
        for step in 1.. {
            let (tx, rx) = bounded::<u64>(4);
            tx.send(1).unwrap();
            let gate = stall::Gate::new();
            let victim = {
                let (tx, gate) = (tx.clone(), gate.clone());
                thread::spawn(move || {
                    stall::arm(step, gate);
                    let r = tx.try_send(2);
                    stall::disarm();
                    r
                })
            };
            let label = parked_or_finished(&gate, &victim);
            let Some(label) = label else {
                victim.join().unwrap().unwrap();
                break;
            };
            parked_at.push(label);
            assert!(rx.close());
            let (done, finished) = mpsc::channel();
            let receiver = thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    match rx.try_recv() {
                        Ok(v) => got.push(v),
                        Err(TryRecvError::Closed) => break,
                        Err(TryRecvError::Empty) => panic!("a closed channel said empty"),
                    }
                }
                done.send(()).unwrap();
                got
            });
            assert!(
                finished.recv_timeout(Duration::from_secs(20)).is_ok(),
                "the receiver waited for the sender parked at step {step} ({label})"
            );
            let got = receiver.join().unwrap();
            gate.release();
            match victim.join().unwrap() {
                Ok(()) => assert_eq!(got, [1, 2], "step {step} ({label})"),
                Err(e) => {
                    assert!(e.is_closed(), "step {step} ({label}): {e:?}");
                    assert_eq!(got, [1], "step {step} ({label})");
                }
            }
            drop(tx);
        }
        eprintln!("sender parked at {} steps: {parked_at:?}", parked_at.len());
        assert!(parked_at.len() >= 5);
    }

    /// A send refused by a close it raced leaves a position in the queue that no
    /// value fills; once everything is quiet the channel's `len`, `is_empty` and
    /// `is_full` must still tell the truth. (They once read that position as a
    /// value: a closed, empty channel of capacity 1 said `len() == 1` and full.)
    #[test]
    fn a_send_refused_by_a_close_leaves_the_length_exact() {
        use atomkit::channel::{bounded, TryRecvError};
        let mut parked = 0;
        for step in 1.. {
            let (tx, rx) = bounded::<u64>(1);
            let gate = stall::Gate::new();
            let victim = {
                let (tx, gate) = (tx.clone(), gate.clone());
                thread::spawn(move || {
                    stall::arm(step, gate);
                    let r = tx.try_send(5);
                    stall::disarm();
                    r
                })
            };
            let Some(label) = parked_or_finished(&gate, &victim) else {
                victim.join().unwrap().unwrap();
                break;
            };
            parked += 1;
            assert!(rx.close());
            gate.release();
            let sent = victim.join().unwrap().is_ok();
            // Quiet from here on.
            let n = usize::from(sent);
            assert_eq!(rx.len(), n, "step {step} ({label})");
            assert_eq!(rx.is_empty(), !sent, "step {step} ({label})");
            assert_eq!(rx.is_full(), sent, "step {step} ({label})");
            if sent {
                assert_eq!(rx.try_recv(), Ok(5));
            }
            assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
            assert_eq!(rx.len(), 0, "step {step} ({label})");
        }
        assert!(parked >= 5);
    }
}
