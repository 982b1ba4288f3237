//! The model-checker build of the wait layer (`atomkit_loom` / `atomkit_shuttle`).
//!
//! A per-execution registry of sleepers keyed by the word's address. `wait` compares
//! the word and enqueues under the registry lock, then blocks on the checker's own
//! primitive (loom: a `Notify` per sleeper; shuttle: `park`/`unpark`). A missing wake
//! therefore leaves a thread blocked for good, which the checker reports as a deadlock;
//! nothing here spins, so the state space stays small. loom's `Notify` may return
//! once without a notify (a spurious wake-up); the first such return a thread meets
//! in an execution goes back to its caller, later ones are absorbed, so that the
//! number of schedules stays finite.
//!
//! Time is not modelled. A timed wait enqueues, yields once (the checker may run any
//! other thread there, including a waker), and then either finds it was woken or gives
//! up. Giving up moves the crate clock (`sync::time::now`) to the deadline, so the
//! caller sees its deadline as passed: "the timeout fired" and "the wake came first"
//! are both explored.

use crate::sync::atomic::{AtomicU32, Ordering};
#[cfg(atomkit_loom)]
use crate::sync::Arc;
use crate::sync::{lock, Mutex};
use std::time::Instant;

#[cfg(atomkit_loom)]
type Waker = Arc<loom::sync::Notify>;
#[cfg(atomkit_shuttle)]
type Waker = shuttle::thread::Thread;

struct Sleeper {
    /// The words it sleeps on (the same one twice for a single-word wait).
    addrs: [usize; 2],
    id: u64,
    waker: Waker,
}

#[derive(Default)]
struct Registry {
    sleepers: Vec<Sleeper>,
    next_id: u64,
}

#[cfg(atomkit_loom)]
loom::lazy_static! {
    static ref REGISTRY: Mutex<Registry> = Mutex::new(Registry::default());
    static ref CLOCK_FLOOR: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
}

#[cfg(atomkit_shuttle)]
shuttle::lazy_static! {
    static ref REGISTRY: Mutex<Registry> = Mutex::new(Registry::default());
    static ref CLOCK_FLOOR: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
}

/// Real time, raised to the latest deadline a modelled timed wait gave up at.
pub(crate) fn now() -> Instant {
    let real = Instant::now();
    let floor = *CLOCK_FLOOR.lock().unwrap_or_else(|e| e.into_inner());
    match floor {
        Some(f) if f > real => f,
        _ => real,
    }
}

fn raise_clock(to: Instant) {
    let mut floor = CLOCK_FLOOR.lock().unwrap_or_else(|e| e.into_inner());
    if floor.is_none_or(|f| f < to) {
        *floor = Some(to);
    }
}

#[cfg(atomkit_loom)]
crate::sync::thread_local! {
    /// Whether this thread has had its spurious wake-up in this execution (see
    /// `sleep`).
    static SPURIOUS_SEEN: core::cell::Cell<bool> = core::cell::Cell::new(false);
}

/// Compares and enqueues under the registry lock. Returns the sleeper's id and waker,
/// or `None` when a word no longer holds its expected value.
fn enqueue(words: [(&AtomicU32, u32); 2]) -> Option<(u64, Waker)> {
    let mut reg = lock(&REGISTRY);
    for (atom, expected) in words {
        // Ordering: Relaxed, the weakest the kernel promises. The registry lock orders
        // this load after any waker's change that preceded its own locked dequeue, so
        // a wake cannot slip between this check and the enqueue.
        if atom.load(Ordering::Relaxed) != expected {
            return None;
        }
    }
    let id = reg.next_id;
    reg.next_id += 1;
    #[cfg(atomkit_loom)]
    let waker = Arc::new(loom::sync::Notify::new());
    #[cfg(atomkit_shuttle)]
    let waker = shuttle::thread::current();
    reg.sleepers.push(Sleeper {
        addrs: words.map(|(atom, _)| atom as *const AtomicU32 as usize),
        id,
        waker: waker.clone(),
    });
    Some((id, waker))
}

/// Whether sleeper `id` is still enqueued (no waker has dequeued it yet).
#[cfg(atomkit_loom)]
fn is_enqueued(id: u64) -> bool {
    lock(&REGISTRY).sleepers.iter().any(|s| s.id == id)
}

/// Removes sleeper `id` if it is still enqueued; true if it was (nobody woke it).
fn dequeue(id: u64) -> bool {
    let mut reg = lock(&REGISTRY);
    match reg.sleepers.iter().position(|s| s.id == id) {
        Some(i) => {
            reg.sleepers.remove(i);
            true
        }
        None => false,
    }
}

pub(super) fn wait(atom: &AtomicU32, expected: u32) {
    sleep([(atom, expected); 2]);
}

/// Untimed: sleeps until a waker dequeues us. Timed: see `timed`.
fn sleep(words: [(&AtomicU32, u32); 2]) {
    let Some((id, waker)) = enqueue(words) else {
        return;
    };
    #[cfg(atomkit_loom)]
    loop {
        waker.wait();
        if !is_enqueued(id) {
            // A waker dequeued us: a real wake-up.
            return;
        }
        // loom's `Notify` returned without a notify: a spurious wake-up, which each
        // `Notify` may make once. The first one a thread meets in an execution goes
        // back to the caller, so callers are checked against rule 1 of the contract;
        // later ones are absorbed, and the thread waits on with this `Notify`, which
        // cannot return spuriously again. Handing every one back would let two
        // sleepers take turns waking spuriously (each sleep has a fresh `Notify`)
        // for as long as their waker stays preempted: a schedule without end, which
        // loom reports as a model over its branch limit.
        if !SPURIOUS_SEEN.with(|seen| seen.replace(true)) {
            // Leave no registration behind: a later `wake_one` spent on it would
            // wake nobody and strand the thread that sleeps here next.
            dequeue(id);
            return;
        }
    }
    #[cfg(atomkit_shuttle)]
    {
        let _ = waker;
        // `park` may return spuriously; sleep until a waker has dequeued us.
        while lock(&REGISTRY).sleepers.iter().any(|s| s.id == id) {
            shuttle::thread::park();
        }
    }
}

pub(super) fn wait_until(atom: &AtomicU32, expected: u32, deadline: Instant) {
    timed([(atom, expected); 2], deadline);
}

/// Enqueues, lets the checker run anything once, then gives up unless woken.
fn timed(words: [(&AtomicU32, u32); 2], deadline: Instant) {
    if now() >= deadline {
        return;
    }
    let Some((id, _waker)) = enqueue(words) else {
        return;
    };
    crate::sync::thread::yield_now();
    if dequeue(id) {
        // Nobody woke us: the timeout fired.
        raise_clock(deadline);
    }
}

fn wake(atom: *const AtomicU32, all: bool) {
    let addr = atom as usize;
    let mut woken = Vec::new();
    {
        let mut reg = lock(&REGISTRY);
        let mut i = 0;
        while i < reg.sleepers.len() {
            if reg.sleepers[i].addrs.contains(&addr) {
                woken.push(reg.sleepers.remove(i).waker);
                if !all {
                    break;
                }
            } else {
                i += 1;
            }
        }
    }
    for w in woken {
        #[cfg(atomkit_loom)]
        w.notify();
        #[cfg(atomkit_shuttle)]
        w.unpark();
    }
}

pub(super) fn wait_either(
    a: &AtomicU32,
    va: u32,
    b: &AtomicU32,
    vb: u32,
    deadline: Option<Instant>,
) {
    match deadline {
        Some(d) => timed([(a, va), (b, vb)], d),
        None => sleep([(a, va), (b, vb)]),
    }
}

pub(super) fn wake_one(atom: *const AtomicU32) {
    wake(atom, false);
}

pub(super) fn wake_all(atom: *const AtomicU32) {
    wake(atom, true);
}
