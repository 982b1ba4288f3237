//! A forest of signals driven by an op sequence, compared with a plain model: per node
//! a parent index, the cause it closed with (if closed) and its effective deadline.
//!
//! Deadlines are either already past when the signal is made or an hour away, so a
//! run's outcome does not depend on how fast it goes: a past deadline closes the
//! signal at once (cause `DeadlineExceeded`), a far one never fires during the run.
#![no_main]

use arbitrary::Arbitrary;
use atomkit::signal::{Cause, Signal};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

/// A deadline to give a new signal.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum When {
    /// None of its own.
    Never,
    /// `n + 1` ms ago.
    Past(u8),
    /// The instant of the call: passed by the time the signal looks (the clock is
    /// monotonic).
    Now,
    /// One hour and `n` seconds from now: distinct far deadlines, to order them.
    Future(u8),
}

impl When {
    /// The instant, and whether it has passed already.
    fn instant(self) -> Option<(Instant, bool)> {
        let now = Instant::now();
        match self {
            When::Never => None,
            When::Past(n) => {
                let d = now.checked_sub(Duration::from_millis(u64::from(n) + 1));
                Some((d.unwrap_or(now), true))
            }
            When::Now => Some((now, true)),
            When::Future(n) => Some((now + far(n), false)),
        }
    }
}

/// A timeout for `with_timeout` / `child_with_timeout`.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Timeout {
    /// Zero: the deadline is the call's own instant, so it has passed.
    Zero,
    /// Too large for an `Instant`: documented as no deadline.
    Huge,
    /// An hour and `n` seconds.
    Far(u8),
}

impl Timeout {
    fn duration(self) -> Duration {
        match self {
            Timeout::Zero => Duration::ZERO,
            Timeout::Huge => Duration::MAX,
            Timeout::Far(n) => far(n),
        }
    }
}

fn far(n: u8) -> Duration {
    Duration::from_secs(3600 + u64::from(n))
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// A new root: `Signal::new`, or `with_deadline` unless `Never`.
    Root(When),
    /// A new root from `with_timeout`.
    RootTimeout(Timeout),
    /// A child of node `n % len`: `child`, or `child_with_deadline` unless `Never`.
    Child(u8, When),
    /// A child of node `n % len` from `child_with_timeout`.
    ChildTimeout(u8, Timeout),
    /// A second handle to node `n % len`.
    Clone(u8),
    /// Drop the handle of node `n % len` (the node stays in the model: its children
    /// keep their link semantics).
    Drop(u8),
    /// Close node `n % len`.
    Close(u8),
    /// Compare every live handle with the model.
    Check,
}

struct ModelNode {
    parent: Option<usize>,
    /// `None` while open. Once set it never changes (a signal closes once, for good).
    cause: Option<Cause>,
    /// The earliest of its own deadline and its ancestors'.
    deadline: Option<Instant>,
}

fn min_deadline(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The cause a new child starts with. A child of a closed signal starts closed with
/// its parent's cause, even if its own deadline has passed too (the parent's close
/// came first, as in Go's `context`); else a child whose own deadline has passed
/// starts closed by it; else it is open.
fn child_cause(parent: Option<Cause>, own_passed: bool) -> Option<Cause> {
    if parent.is_some() {
        parent
    } else if own_passed {
        Some(Cause::DeadlineExceeded)
    } else {
        None
    }
}

/// A root's cause: closed at birth exactly when its deadline has passed.
fn root_cause(passed: bool) -> Option<Cause> {
    passed.then_some(Cause::DeadlineExceeded)
}

/// Checks that a timeout's deadline lies where the docs put it: `timeout` after some
/// instant of the call (`before..=after`), or no deadline when that overflows; then
/// the earliest of that and `inherited`. Returns the deadline seen.
fn check_timeout_deadline(
    got: Option<Instant>,
    timeout: Duration,
    inherited: Option<Instant>,
    before: Instant,
    after: Instant,
) -> Option<Instant> {
    match (before.checked_add(timeout), after.checked_add(timeout)) {
        (Some(lo), Some(hi)) => {
            let lo = min_deadline(Some(lo), inherited).unwrap();
            let hi = min_deadline(Some(hi), inherited).unwrap();
            let d = got.expect("a representable timeout gives a deadline");
            assert!(lo <= d && d <= hi, "deadline outside the call's window");
        }
        _ => assert_eq!(got, inherited, "an unrepresentable timeout is no deadline"),
    }
    got
}

fuzz_target!(|ops: Vec<Op>| {
    let mut model = vec![ModelNode {
        parent: None,
        cause: None,
        deadline: None,
    }];
    let mut handles: Vec<Vec<Signal>> = vec![vec![Signal::new()]];
    for op in ops.into_iter().take(256) {
        let len = model.len();
        match op {
            Op::Root(when) => {
                let (s, node) = match when.instant() {
                    None => (Signal::new(), (None, None)),
                    Some((d, passed)) => (Signal::with_deadline(d), (root_cause(passed), Some(d))),
                };
                model.push(ModelNode {
                    parent: None,
                    cause: node.0,
                    deadline: node.1,
                });
                handles.push(vec![s]);
            }
            Op::RootTimeout(t) => {
                let before = Instant::now();
                let s = Signal::with_timeout(t.duration());
                let after = Instant::now();
                let deadline =
                    check_timeout_deadline(s.deadline(), t.duration(), None, before, after);
                model.push(ModelNode {
                    parent: None,
                    cause: root_cause(matches!(t, Timeout::Zero)),
                    deadline,
                });
                handles.push(vec![s]);
            }
            Op::Child(n, when) => {
                let p = n as usize % len;
                // A node whose handles are all gone cannot make children.
                let Some(h) = handles[p].first() else {
                    continue;
                };
                let (c, own, passed) = match when.instant() {
                    None => (h.child(), None, false),
                    Some((d, passed)) => (h.child_with_deadline(d), Some(d), passed),
                };
                model.push(ModelNode {
                    parent: Some(p),
                    cause: child_cause(model[p].cause, passed),
                    deadline: min_deadline(own, model[p].deadline),
                });
                handles.push(vec![c]);
            }
            Op::ChildTimeout(n, t) => {
                let p = n as usize % len;
                let Some(h) = handles[p].first() else {
                    continue;
                };
                let before = Instant::now();
                let c = h.child_with_timeout(t.duration());
                let after = Instant::now();
                let inherited = model[p].deadline;
                let deadline =
                    check_timeout_deadline(c.deadline(), t.duration(), inherited, before, after);
                model.push(ModelNode {
                    parent: Some(p),
                    cause: child_cause(model[p].cause, matches!(t, Timeout::Zero)),
                    deadline,
                });
                handles.push(vec![c]);
            }
            Op::Clone(n) => {
                let i = n as usize % len;
                if let Some(h) = handles[i].first() {
                    let c = h.clone();
                    assert!(c.same_as(h));
                    handles[i].push(c);
                }
            }
            Op::Drop(n) => {
                let i = n as usize % len;
                handles[i].pop();
            }
            Op::Close(n) => {
                let i = n as usize % len;
                let Some(h) = handles[i].first() else {
                    continue;
                };
                // True only for the call that closed it: never for a signal closed
                // already, by a close or by its deadline (whose cause then stays).
                let was_open = model[i].cause.is_none();
                assert_eq!(h.close(), was_open, "node {i}: close's return");
                if was_open {
                    // Every open descendant closes with this cause. A descendant whose
                    // own deadline passed is closed already (it was born closed), so
                    // keeps `DeadlineExceeded`. Children come after their parents.
                    let mut below = vec![false; model.len()];
                    below[i] = true;
                    for j in i..model.len() {
                        below[j] |= model[j].parent.is_some_and(|p| below[p]);
                        if below[j] && model[j].cause.is_none() {
                            model[j].cause = Some(Cause::Closed);
                        }
                    }
                }
            }
            Op::Check => {
                for (i, hs) in handles.iter().enumerate() {
                    let want = &model[i];
                    for h in hs {
                        assert_eq!(h.is_closed(), want.cause.is_some(), "node {i}");
                        assert_eq!(h.cause(), want.cause, "node {i}");
                        assert_eq!(h.deadline(), want.deadline, "node {i}");
                        // Waits with nothing left to wait return the state at once.
                        let closed = want.cause.is_some();
                        assert_eq!(h.wait_deadline(Instant::now()), closed, "node {i}");
                        assert_eq!(h.wait_timeout(Duration::ZERO), closed, "node {i}");
                    }
                }
            }
        }
    }
});
