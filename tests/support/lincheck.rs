//! A linearizability checker for small concurrent histories (Wing & Gong's search,
//! with Lowe's memoisation of visited states).
//!
//! Threads record each operation's invocation and response against one shared logical
//! clock ([`Recorder`]); [`check`] then searches for a sequential order of the
//! operations that (1) respects real time — an operation that responded before another
//! was invoked comes first — and (2) gives every operation the result a sequential
//! [`Model`] gives it. Histories of up to a few dozen operations from 2-4 threads check
//! in milliseconds.
//!
//! Include it from a test file with
//! `#[path = "support/lincheck.rs"] mod lincheck;` (or `../../tests/support/lincheck.rs`
//! from `loom-tests/tests/`).

#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A sequential specification: the state, and what each operation returns from it.
pub trait Model: Clone + Eq + Hash + Debug {
    /// An operation with its arguments.
    type Op: Clone + Debug;
    /// What an operation returns.
    type Ret: Clone + PartialEq + Debug;
    /// Applies `op` to the state and returns its result.
    fn step(&mut self, op: &Self::Op) -> Self::Ret;
}

/// One completed operation of a history.
#[derive(Clone, Debug)]
pub struct Event<Op, Ret> {
    /// The thread that ran it (for error messages).
    pub thread: usize,
    /// The operation.
    pub op: Op,
    /// What the implementation returned.
    pub ret: Ret,
    /// Logical time of the invocation.
    pub call: u64,
    /// Logical time of the response.
    pub done: u64,
}

/// Collects events from many threads against one logical clock.
///
/// The clock is a `SeqCst` counter read right before the operation starts and right
/// after it returns, so "a returned before b was called" in the record implies it
/// did in real time.
#[derive(Debug)]
pub struct Recorder<Op, Ret> {
    clock: AtomicU64,
    events: Mutex<Vec<Event<Op, Ret>>>,
}

impl<Op: Clone, Ret: Clone> Default for Recorder<Op, Ret> {
    fn default() -> Self {
        Recorder {
            clock: AtomicU64::new(0),
            events: Mutex::new(Vec::new()),
        }
    }
}

impl<Op: Clone, Ret: Clone> Recorder<Op, Ret> {
    /// Runs `f` as operation `op` of `thread` and records it.
    pub fn record(&self, thread: usize, op: Op, f: impl FnOnce() -> Ret) -> Ret {
        let call = self.clock.fetch_add(1, Ordering::SeqCst);
        let ret = f();
        let done = self.clock.fetch_add(1, Ordering::SeqCst);
        self.events.lock().unwrap().push(Event {
            thread,
            op,
            ret: ret.clone(),
            call,
            done,
        });
        ret
    }

    /// The recorded history.
    pub fn history(&self) -> Vec<Event<Op, Ret>> {
        self.events.lock().unwrap().clone()
    }
}

/// Searches for a linearization of `history` starting from `init`. Returns the order
/// found (indices into `history`), or `Err` with a description of the history.
pub fn check<M: Model>(init: M, history: &[Event<M::Op, M::Ret>]) -> Result<Vec<usize>, String> {
    let n = history.len();
    assert!(n <= 128, "lincheck: histories of at most 128 operations");
    let mut order = Vec::with_capacity(n);
    let mut seen: HashSet<(u128, M)> = HashSet::new();
    if search(&init, history, 0u128, &mut order, &mut seen) {
        Ok(order)
    } else {
        let mut h: Vec<_> = history.iter().collect();
        h.sort_by_key(|e| e.call);
        let mut msg = String::from("history is not linearizable:\n");
        for e in h {
            msg.push_str(&format!(
                "  t{} [{:>4}, {:>4}] {:?} -> {:?}\n",
                e.thread, e.call, e.done, e.op, e.ret
            ));
        }
        Err(msg)
    }
}

/// Whether two operations of different threads overlap in time in `history`: a
/// history without any is sequential, and every correct model accepts it trivially,
/// so stress tests use this to show that they raced at all.
pub fn overlapping<Op, Ret>(history: &[Event<Op, Ret>]) -> bool {
    history.iter().any(|a| {
        history
            .iter()
            .any(|b| a.thread != b.thread && a.call < b.call && b.call < a.done)
    })
}

fn search<M: Model>(
    state: &M,
    h: &[Event<M::Op, M::Ret>],
    done: u128,
    order: &mut Vec<usize>,
    seen: &mut HashSet<(u128, M)>,
) -> bool {
    let n = h.len();
    if order.len() == n {
        return true;
    }
    if !seen.insert((done, state.clone())) {
        return false;
    }
    // The earliest response among pending operations: anything invoked after it cannot
    // go next (real-time order).
    let horizon = (0..n)
        .filter(|&i| done & (1 << i) == 0)
        .map(|i| h[i].done)
        .min()
        .unwrap_or(u64::MAX);
    for i in 0..n {
        if done & (1 << i) != 0 || h[i].call > horizon {
            continue;
        }
        let mut next = state.clone();
        if next.step(&h[i].op) != h[i].ret {
            continue;
        }
        order.push(i);
        if search(&next, h, done | (1 << i), order, seen) {
            return true;
        }
        order.pop();
    }
    false
}

#[cfg(test)]
mod self_test {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct Register(u32);

    #[derive(Clone, Debug)]
    enum RegOp {
        Write(u32),
        Read,
    }

    impl Model for Register {
        type Op = RegOp;
        type Ret = Option<u32>;
        fn step(&mut self, op: &RegOp) -> Option<u32> {
            match op {
                RegOp::Write(v) => {
                    self.0 = *v;
                    None
                }
                RegOp::Read => Some(self.0),
            }
        }
    }

    fn ev(
        thread: usize,
        op: RegOp,
        ret: Option<u32>,
        call: u64,
        done: u64,
    ) -> Event<RegOp, Option<u32>> {
        Event {
            thread,
            op,
            ret,
            call,
            done,
        }
    }

    #[test]
    fn lincheck_accepts_overlapping_operations_in_either_order() {
        let h = [
            ev(0, RegOp::Write(1), None, 0, 3),
            ev(1, RegOp::Read, Some(1), 1, 2),
        ];
        assert!(check(Register(0), &h).is_ok());
    }

    #[test]
    fn overlapping_tells_racing_from_sequential_histories() {
        let racing = [
            ev(0, RegOp::Write(1), None, 0, 3),
            ev(1, RegOp::Read, Some(1), 1, 2),
        ];
        assert!(overlapping(&racing));
        let sequential = [
            ev(0, RegOp::Write(1), None, 0, 1),
            ev(1, RegOp::Read, Some(1), 2, 3),
        ];
        assert!(!overlapping(&sequential));
    }

    #[test]
    fn lincheck_rejects_a_stale_read_after_the_write_returned() {
        let h = [
            ev(0, RegOp::Write(1), None, 0, 1),
            ev(1, RegOp::Read, Some(0), 2, 3),
        ];
        assert!(check(Register(0), &h).is_err());
    }
}
