//! Close-as-broadcast: Go's `close(done)` and `context` cancellation in one type.
//!
//! A [`Signal`] starts open and closes once, for good. Any number of threads can ask
//! whether it is closed (one atomic load) or sleep until it is; closing wakes all of
//! them. Signals form trees: a [`child`](Signal::child) closes when its parent does,
//! never the reverse, so one `close` at the root stops a whole request's worth of
//! work. A signal may carry a deadline, at which it closes itself, with no thread or
//! timer behind it.
//!
//! ```
//! use atomkit::signal::{Cause, Signal};
//! use std::thread;
//!
//! let shutdown = Signal::new();
//! let workers: Vec<_> = (0..4)
//!     .map(|_| {
//!         let done = shutdown.child();
//!         thread::spawn(move || {
//!             let mut ticks = 0u64;
//!             while !done.is_closed() {
//!                 ticks += 1; // one unit of work
//!                 # if ticks > 1_000 { done.wait(); }
//!             }
//!             ticks
//!         })
//!     })
//!     .collect();
//! assert!(shutdown.close()); // broadcast: every worker's child closes
//! for w in workers {
//!     w.join().unwrap();
//! }
//! assert_eq!(shutdown.cause(), Some(Cause::Closed));
//! ```
//!
//! # Implementation
//!
//! Each signal is a node behind an `Arc`, with one `AtomicU32` state word that is also
//! the word its waiters sleep on (the `wait` layer (`src/wait`), a futex):
//!
//! | bit | name       | set by                          | meaning |
//! |-----|------------|---------------------------------|---------|
//! | 0   | `CLOSED`   | the one closer whose CAS wins   | closed for good |
//! | 1   | `WAITERS`  | a waiter, before it sleeps      | someone may sleep on the word |
//! | 2   | `DEADLINE` | the closer, with `CLOSED`       | cause is `DeadlineExceeded` |
//!
//! The node also holds its deadline (immutable, already the minimum of its own and its
//! parent's), a count of holds (its user handles plus one per child linked into its
//! slots), a link to its parent (the parent node and the slot it occupies there), and,
//! under a small mutex, the slots of its open children.
//!
//! Invariants:
//!
//! 1. `CLOSED` and `DEADLINE` are set once, together, by one compare-and-swap, and
//!    never cleared; so `close` returns `true` at most once (never, if the deadline
//!    closed the signal first) and the cause never changes.
//! 2. A child is linked into its parent's slots only while holding the parent's
//!    children lock and seeing the parent open; `close` sets `CLOSED` before it takes
//!    that lock and empties the slots. So a child is either created closed or found
//!    by the parent's close: never left open (the race of `child()` with `close()`).
//! 3. A child's deadline is never later than its parent's, so when a parent's
//!    deadline passes, its children's have passed too: the walk of a deadline close
//!    gives them the same cause, and a child that looks first closes itself.
//! 4. A node's slot in its parent is freed when the child's last hold goes: its last
//!    handle drops while no child of its own is linked (a child with live
//!    descendants stays linked, to pass closes down to them); freed slots are
//!    reused, so a long-lived parent holds at most as many slots as it ever had
//!    linked children at once.
//! 5. Closing a tree walks it with an explicit stack: O(N) for N linked descendants,
//!    no recursion, in two passes: close every node reachable through the links
//!    (going on into nodes found closed already, whose own closer may not have
//!    reached their children yet), then unlink the children of every node visited.
//!    Nothing is unlinked until the whole subtree below it is closed, so when any
//!    `close` returns, every descendant is closed, whichever closer got there first.
//!    A node whose close has finished has no links left, so walking into it is O(1).
//!
//! A deadline closes the signal lazily: `is_closed`, `cause` and the waits compare
//! the clock with it (a vDSO call on Linux, no syscall) and, once it has passed, close
//! the signal with cause `DeadlineExceeded` (which wakes any sleeper). Sleepers use a
//! timed futex wait that ends at the deadline, so someone is always there to notice.
//!
//! ## Memory orderings
//!
//! - The closing CAS is `AcqRel`: its Release half pairs with the Acquire loads in
//!   `is_closed`, `cause` and the waits, so everything the closer wrote before
//!   `close()` is visible to a thread that sees the signal closed (Go's "a close
//!   happens before a receive that returns because the channel is closed").
//! - The `WAITERS` flag is set with a `Relaxed` CAS: it and the closing CAS are
//!   read-modify-writes of the same word, so they are totally ordered and each sees
//!   the other's effect. Either the closer's CAS comes later and sees `WAITERS` (and
//!   wakes), or the waiter's CAS fails or the futex compare sees `CLOSED` and it does
//!   not sleep. No fence is needed because no second word is involved.
//! - The closer wakes with the address only, while it holds a reference to the node,
//!   so the wake never touches freed memory (the wait layer's rule 3).
//! - The hold count is `Relaxed`: it guards no memory (the `Arc` does); only the
//!   atomicity of the decrement matters, so that one dropper sees the last hold go.

use crate::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use crate::sync::time::{self, Duration, Instant};
use crate::sync::{lock, Arc, Mutex};
use crate::wait;
use core::fmt;

const CLOSED: u32 = 1;
const WAITERS: u32 = 1 << 1;
const DEADLINE: u32 = 1 << 2;

/// Why a [`Signal`] closed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// [`Signal::close`] was called on it or on an ancestor.
    Closed,
    /// Its deadline, or an ancestor's, passed.
    DeadlineExceeded,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Closed => f.write_str("signal closed"),
            Cause::DeadlineExceeded => f.write_str("deadline exceeded"),
        }
    }
}

impl std::error::Error for Cause {}

/// The slots of a node's open children. Written only under the node's children lock.
#[derive(Default)]
struct Children {
    /// Children linked into this node; `None` is a free slot.
    slots: Vec<Option<Arc<Node>>>,
    /// Indices of free slots in `slots`, reused before `slots` grows.
    free: Vec<usize>,
}

struct Node {
    /// The state word (`CLOSED | WAITERS | DEADLINE`), also the futex word.
    /// Written by closers (CAS) and waiters (CAS setting `WAITERS`).
    state: AtomicU32,
    /// When this signal closes by itself: the minimum of its own deadline and its
    /// parent's (invariant 3). Immutable.
    deadline: Option<Instant>,
    /// Holds on this node: live `Signal` handles plus linked children (invariant 4).
    /// Written by `clone`, `drop`, `child` and the close walk.
    handles: AtomicUsize,
    /// The parent and this node's slot in it. Immutable.
    parent: Option<(Arc<Node>, usize)>,
    /// Open children (invariant 2). Guarded by its mutex.
    children: Mutex<Children>,
}

impl Node {
    fn new(state: u32, deadline: Option<Instant>, parent: Option<(Arc<Node>, usize)>) -> Self {
        Node {
            state: AtomicU32::new(state),
            deadline,
            handles: AtomicUsize::new(1),
            parent,
            children: Mutex::new(Children::default()),
        }
    }

    /// Sets `CLOSED | cause` if the node is open; true if this call closed it.
    /// Wakes every sleeper when there were any.
    fn try_close(&self, cause: u32) -> bool {
        // Ordering: Relaxed; the CAS below revalidates the value it acts on.
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & CLOSED != 0 {
                return false;
            }
            // Ordering: AcqRel on success: Release pairs with the Acquire loads in
            // `Signal::is_closed`, `cause` and `wait_inner`. The Acquire half is not
            // needed for invariant 2 (program order and the children lock give it);
            // it is free on x86. Relaxed on failure: we retry.
            match self.state.compare_exchange_weak(
                s,
                s | CLOSED | cause,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        if s & WAITERS != 0 {
            // We hold a reference to this node, so the word is alive; even so the wake
            // only uses the address (wait-layer rule 3).
            wait::wake_all(&self.state);
        }
        true
    }

    /// Unlinks every open child onto `stack` (invariant 2: called after `CLOSED` is
    /// set), and drops the holds those children had on this node (invariant 4).
    fn take_children_into(this: &Arc<Node>, stack: &mut Vec<Arc<Node>>) {
        let taken = core::mem::take(&mut *lock(&this.children));
        let before = stack.len();
        stack.extend(taken.slots.into_iter().flatten());
        let unlinked = stack.len() - before;
        if unlinked > 0 {
            release(this, unlinked);
        }
    }

    /// Closes this node and every open descendant (invariant 5), also when another
    /// thread is closing part of the tree: when this returns, every descendant is
    /// closed. True if this call closed this node.
    ///
    /// Two passes. The first closes every node reachable through the children links,
    /// going on into nodes found closed already (their closer may not have reached
    /// their children yet). Nothing is unlinked during it, so another closer's walk
    /// reaches the same nodes. The second unlinks the children of every node visited:
    /// all closed by then, so a walk that finds a node's links gone afterwards has
    /// nothing left to close below it.
    fn close_tree(this: &Arc<Node>, cause: u32) -> bool {
        let closed = this.try_close(cause);
        if lock(&this.children).slots.iter().all(Option::is_none) {
            // No links: nothing below to close (the common case of a leaf, or of a
            // node whose close has finished). No allocation.
            return closed;
        }
        let mut visited = Vec::new();
        let mut stack = vec![Arc::clone(this)];
        while let Some(node) = stack.pop() {
            let before = stack.len();
            stack.extend(lock(&node.children).slots.iter().flatten().cloned());
            for child in &stack[before..] {
                // Ordering: Relaxed; only skips the clock read for a closed child
                // (`try_close` rechecks with its CAS).
                if child.state.load(Ordering::Relaxed) & CLOSED == 0 {
                    let cause = if child.deadline_passed() {
                        DEADLINE
                    } else {
                        cause
                    };
                    child.try_close(cause);
                }
            }
            visited.push(node);
        }
        let mut unlinked = Vec::new();
        for node in &visited {
            Node::take_children_into(node, &mut unlinked);
        }
        closed
    }

    /// Whether the node has a deadline and it has passed (one clock read if it has
    /// one).
    fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| time::now() >= d)
    }

    /// Loads the state, first closing the node if its deadline has passed.
    fn observe(this: &Arc<Node>) -> u32 {
        // Ordering: Acquire pairs with the Release half of the closing CAS in
        // `try_close`, so a thread that sees `CLOSED` sees what the closer wrote.
        let s = this.state.load(Ordering::Acquire);
        if s & CLOSED != 0 {
            return s;
        }
        match this.deadline {
            Some(d) if time::now() >= d => {
                Node::close_tree(this, DEADLINE);
                // Ordering: Acquire, as above; the node is closed now, by us or another.
                this.state.load(Ordering::Acquire)
            }
            _ => s,
        }
    }
}

impl Drop for Node {
    /// Frees a chain of ancestors that only this node kept alive without recursing
    /// (a 100,000-deep chain of children must not overflow the stack when its leaf
    /// goes): each parent that we own alone is unwrapped and its own parent taken next.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some((parent, _)) = next {
            match Arc::try_unwrap(parent) {
                Ok(mut node) => next = node.parent.take(),
                // Someone else still holds it: dropping our reference is all we do.
                Err(_) => break,
            }
        }
    }
}

fn cause_of(state: u32) -> Option<Cause> {
    if state & CLOSED == 0 {
        None
    } else if state & DEADLINE != 0 {
        Some(Cause::DeadlineExceeded)
    } else {
        Some(Cause::Closed)
    }
}

/// A one-shot broadcast: open until closed, then closed for good. Cloning shares it.
///
/// See the [module documentation](self) for trees, deadlines and the guarantees.
///
/// # Examples
///
/// ```
/// use atomkit::signal::Signal;
/// use std::time::Duration;
///
/// let done = Signal::new();
/// let d = done.clone();
/// let t = std::thread::spawn(move || d.wait_timeout(Duration::from_secs(10)));
/// assert!(done.close());
/// assert!(!done.close()); // idempotent: only the first close reports true
/// assert!(t.join().unwrap()); // woken because it closed
/// ```
pub struct Signal {
    node: Arc<Node>,
}

impl Signal {
    /// Creates an open signal with no deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = atomkit::signal::Signal::new();
    /// assert!(!s.is_closed());
    /// ```
    pub fn new() -> Self {
        Signal {
            node: Arc::new(Node::new(0, None, None)),
        }
    }

    /// Creates a signal that closes itself at `deadline` with cause
    /// [`Cause::DeadlineExceeded`]. A deadline already past gives a closed signal.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::signal::{Cause, Signal};
    /// use std::time::Instant;
    ///
    /// let s = Signal::with_deadline(Instant::now());
    /// assert_eq!(s.cause(), Some(Cause::DeadlineExceeded));
    /// ```
    pub fn with_deadline(deadline: Instant) -> Self {
        let state = if time::now() >= deadline {
            CLOSED | DEADLINE
        } else {
            0
        };
        Signal {
            node: Arc::new(Node::new(state, Some(deadline), None)),
        }
    }

    /// Creates a signal that closes itself `timeout` from now. A timeout too large to
    /// represent as an `Instant` means no deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::signal::Signal;
    /// use std::time::Duration;
    ///
    /// let s = Signal::with_timeout(Duration::from_millis(1));
    /// assert!(s.wait_timeout(Duration::from_secs(10)));
    /// ```
    pub fn with_timeout(timeout: Duration) -> Self {
        match time::now().checked_add(timeout) {
            Some(deadline) => Signal::with_deadline(deadline),
            None => Signal::new(),
        }
    }

    /// Closes the signal and all its open descendants, waking every waiter. Returns
    /// `true` only for the call that closed it; later calls (and calls racing the
    /// winner) return `false`. When it returns, every descendant is closed, also if
    /// another thread's close of part of the tree is still under way.
    ///
    /// A signal whose deadline has passed was closed by it (cause
    /// [`DeadlineExceeded`](Cause::DeadlineExceeded)), whether or not anyone looked
    /// yet: `close` then returns `false` and the cause stays. Likewise a descendant
    /// whose own deadline has passed is closed with that cause, not this one.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = atomkit::signal::Signal::new();
    /// assert!(s.close());
    /// assert!(!s.close());
    /// assert!(s.is_closed());
    /// ```
    pub fn close(&self) -> bool {
        if self.node.deadline_passed() {
            Node::close_tree(&self.node, DEADLINE);
            return false;
        }
        Node::close_tree(&self.node, 0)
    }

    /// Whether the signal is closed. On an open signal without a deadline this is one
    /// atomic load; with a deadline it also reads the clock, and closes the signal
    /// once the deadline has passed.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = atomkit::signal::Signal::new();
    /// assert!(!s.is_closed());
    /// s.close();
    /// assert!(s.is_closed());
    /// ```
    #[inline]
    pub fn is_closed(&self) -> bool {
        // Ordering: Acquire pairs with the closing CAS in `Node::try_close`.
        if self.node.state.load(Ordering::Acquire) & CLOSED != 0 {
            return true;
        }
        self.node.deadline.is_some() && Node::observe(&self.node) & CLOSED != 0
    }

    /// Why the signal closed, or `None` while it is open.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::signal::{Cause, Signal};
    ///
    /// let s = Signal::new();
    /// assert_eq!(s.cause(), None);
    /// s.close();
    /// assert_eq!(s.cause(), Some(Cause::Closed));
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        cause_of(Node::observe(&self.node))
    }

    /// The instant at which this signal closes by itself, if any (the earliest of its
    /// own deadline and its ancestors').
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::signal::Signal;
    /// use std::time::Duration;
    ///
    /// assert!(Signal::new().deadline().is_none());
    /// assert!(Signal::with_timeout(Duration::from_secs(5)).deadline().is_some());
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline
    }

    /// Blocks until the signal closes.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::signal::Signal;
    ///
    /// let s = Signal::new();
    /// let s2 = s.clone();
    /// std::thread::spawn(move || s2.close());
    /// s.wait();
    /// assert!(s.is_closed());
    /// ```
    pub fn wait(&self) {
        self.wait_inner(None);
    }

    /// Blocks until the signal closes or `timeout` passes. Returns `true` if it closed.
    /// A timeout too large to represent as an `Instant` means no timeout: it waits as
    /// [`wait`](Signal::wait) does, until the close or the signal's own deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::signal::Signal;
    /// use std::time::Duration;
    ///
    /// let s = Signal::new();
    /// assert!(!s.wait_timeout(Duration::from_millis(1)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        // A timeout past the end of time is no timeout.
        self.wait_inner(time::now().checked_add(timeout))
    }

    /// Blocks until the signal closes or `deadline` passes. Returns `true` if it
    /// closed. A deadline in the past returns at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::signal::Signal;
    /// use std::time::Instant;
    ///
    /// let s = Signal::new();
    /// assert!(!s.wait_deadline(Instant::now()));
    /// s.close();
    /// assert!(s.wait_deadline(Instant::now()));
    /// ```
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_inner(Some(deadline))
    }

    fn wait_inner(&self, deadline: Option<Instant>) -> bool {
        let node = &self.node;
        // Sleep until the earlier of the caller's deadline and the signal's own.
        let wake_at = match (deadline, node.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        loop {
            // `observe` closes the signal if its own deadline passed.
            let s = Node::observe(node);
            if s & CLOSED != 0 {
                return true;
            }
            if deadline.is_some_and(|d| time::now() >= d) {
                return false;
            }
            if s & WAITERS == 0 {
                // Ordering: Relaxed; this CAS and the closing CAS are RMWs of one word,
                // so whichever comes second sees the other (see `# Implementation`).
                // On failure we reload with Acquire at the top of the loop.
                if node
                    .state
                    .compare_exchange(s, s | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
                {
                    continue;
                }
            }
            // Sleeps only while the word still reads "open, waiters"; a close in
            // between changes it and the futex returns at once.
            wait::wait_maybe_until(&node.state, s | WAITERS, wake_at);
        }
    }

    /// Readies a sleep that must also end when this signal closes: marks the signal
    /// as having waiters (so its close wakes the futex word) and returns that word
    /// with the value to sleep on, for [`wait::wait_either`]. `None` if the signal is
    /// closed (its own deadline included).
    pub(crate) fn arm(&self) -> Option<(&AtomicU32, u32)> {
        let node = &self.node;
        loop {
            // `observe` closes the signal if its own deadline passed.
            let s = Node::observe(node);
            if s & CLOSED != 0 {
                return None;
            }
            if s & WAITERS != 0 {
                return Some((&node.state, s));
            }
            // Ordering: Relaxed, as the same CAS in `wait_inner`: it and the closing
            // CAS are RMWs of one word, so whichever comes second sees the other.
            if node
                .state
                .compare_exchange(s, s | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                return Some((&node.state, s | WAITERS));
            }
        }
    }

    /// Creates a child: it closes when this signal closes (with the same cause,
    /// unless the child is closed already or its own deadline has passed), never the
    /// reverse. A child of a closed signal starts closed with the parent's cause,
    /// whatever its own deadline (the parent closed first; Go's `context` does the
    /// same). Once every handle to a child and to each of its descendants is dropped,
    /// it unlinks from its parent (until then it stays linked, to pass closes down).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::signal::Signal;
    ///
    /// let parent = Signal::new();
    /// let child = parent.child();
    /// child.close();
    /// assert!(!parent.is_closed()); // never upwards
    /// let child2 = parent.child();
    /// parent.close();
    /// assert!(child2.is_closed()); // always downwards
    /// ```
    pub fn child(&self) -> Signal {
        self.child_inner(None)
    }

    /// Creates a child that also closes itself at `deadline`, or at this signal's own
    /// deadline if that comes first. A deadline already past gives a closed child,
    /// with cause [`DeadlineExceeded`](Cause::DeadlineExceeded) (or this signal's
    /// cause, if it is closed already).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::signal::{Cause, Signal};
    /// use std::time::{Duration, Instant};
    ///
    /// let parent = Signal::with_timeout(Duration::from_secs(1));
    /// let child = parent.child_with_deadline(Instant::now() + Duration::from_secs(60));
    /// assert_eq!(child.deadline(), parent.deadline()); // never later than the parent's
    /// ```
    pub fn child_with_deadline(&self, deadline: Instant) -> Signal {
        self.child_inner(Some(deadline))
    }

    /// Creates a child that also closes itself `timeout` from now (or at this signal's
    /// own deadline if that comes first). A timeout too large to represent as an
    /// `Instant` gives the child no deadline of its own: it keeps this signal's.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::signal::{Cause, Signal};
    /// use std::time::Duration;
    ///
    /// let request = Signal::new();
    /// let call = request.child_with_timeout(Duration::from_millis(1));
    /// call.wait();
    /// assert_eq!(call.cause(), Some(Cause::DeadlineExceeded));
    /// assert!(!request.is_closed());
    /// ```
    pub fn child_with_timeout(&self, timeout: Duration) -> Signal {
        self.child_inner(time::now().checked_add(timeout))
    }

    fn child_inner(&self, deadline: Option<Instant>) -> Signal {
        let parent = &self.node;
        // Invariant 3: never later than the parent's deadline.
        let deadline = match (deadline, parent.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let past = deadline.is_some_and(|d| time::now() >= d);
        let mut children = lock(&parent.children);
        // Invariant 2: checked under the children lock, which `close_tree` takes only
        // after its closing CAS. Ordering: Acquire, so a closed parent's cause and
        // writes are visible through the child too.
        let ps = parent.state.load(Ordering::Acquire);
        if ps & CLOSED != 0 || past {
            drop(children);
            let cause = if ps & CLOSED != 0 {
                ps & DEADLINE
            } else {
                DEADLINE
            };
            return Signal {
                node: Arc::new(Node::new(CLOSED | cause, deadline, None)),
            };
        }
        let slot = match children.free.pop() {
            Some(slot) => slot,
            None => {
                children.slots.push(None);
                children.slots.len() - 1
            }
        };
        let node = Arc::new(Node::new(0, deadline, Some((parent.clone(), slot))));
        children.slots[slot] = Some(node.clone());
        // The linked child holds its parent (invariant 4). We hold a handle, so the
        // count is above zero and nobody can be unlinking the parent right now.
        // Ordering: Relaxed, as for every change of the count.
        parent.handles.fetch_add(1, Ordering::Relaxed);
        Signal { node }
    }

    /// Whether `self` and `other` are handles to the same signal.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::signal::Signal;
    ///
    /// let a = Signal::new();
    /// assert!(a.same_as(&a.clone()));
    /// assert!(!a.same_as(&a.child()));
    /// ```
    pub fn same_as(&self, other: &Signal) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }
}

impl Default for Signal {
    fn default() -> Self {
        Signal::new()
    }
}

impl Clone for Signal {
    fn clone(&self) -> Self {
        // Ordering: Relaxed; see `# Implementation` (the count guards no memory).
        self.node.handles.fetch_add(1, Ordering::Relaxed);
        Signal {
            node: self.node.clone(),
        }
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        release(&self.node, 1);
    }
}

/// Drops `count` holds on `node` (invariant 4). Holds are the user handles plus one per
/// child linked into the node's slots, so a node stays linked to its parent, and keeps
/// passing closes down to its children, as long as anything below it is alive. When the
/// last hold goes, the node unlinks from its parent, which drops that child's hold on
/// the parent: the walk goes up the chain iteratively, never recursively.
fn release(node: &Arc<Node>, count: usize) {
    let mut node = node.clone();
    let mut count = count;
    loop {
        // Ordering: Relaxed; only the atomicity of the decrement matters (the count
        // guards no memory: the `Arc`s do).
        if node.handles.fetch_sub(count, Ordering::Relaxed) != count {
            return;
        }
        let Some((parent, slot)) = &node.parent else {
            return;
        };
        let unlinked = {
            let mut children = lock(&parent.children);
            let ours = matches!(
                children.slots.get(*slot),
                Some(Some(n)) if Arc::ptr_eq(n, &node)
            );
            if ours {
                children.free.push(*slot);
                children.slots[*slot].take()
            } else {
                // The parent's close took this child and released its hold itself.
                None
            }
        };
        if unlinked.is_none() {
            return;
        }
        let parent = parent.clone();
        // Dropped outside the parent's lock.
        drop(unlinked);
        node = parent;
        count = 1;
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(any(atomkit_loom, atomkit_shuttle))))]
mod tests {
    use super::*;

    fn slots_in_use(s: &Signal) -> usize {
        let c = lock(&s.node.children);
        c.slots.iter().filter(|x| x.is_some()).count()
    }

    #[test]
    fn dropped_children_free_their_slots() {
        let parent = Signal::new();
        for _ in 0..100 {
            let c = parent.child();
            let c2 = c.clone();
            drop(c);
            assert_eq!(slots_in_use(&parent), 1);
            drop(c2);
            assert_eq!(slots_in_use(&parent), 0);
        }
        assert!(lock(&parent.node.children).slots.len() <= 1);
    }

    #[test]
    fn grandchild_of_a_dropped_child_still_closes() {
        let root = Signal::new();
        let child = root.child();
        let grandchild = child.child();
        drop(child);
        assert_eq!(
            slots_in_use(&root),
            1,
            "the child stays linked while it has children"
        );
        root.close();
        assert!(grandchild.is_closed());
    }

    #[test]
    fn a_chain_unlinks_when_its_leaf_drops() {
        let root = Signal::new();
        let mut leaf = root.child();
        for _ in 0..1000 {
            leaf = leaf.child();
        }
        assert_eq!(slots_in_use(&root), 1);
        drop(leaf);
        assert_eq!(slots_in_use(&root), 0);
        assert_eq!(root.node.handles.load(Ordering::Relaxed), 1);
    }

    /// Threads churn short-lived children of one long-lived parent (some closed, some
    /// dropped before their own child, some with a child created already expired).
    /// Once they are done the parent holds no links and only its own handle, and its
    /// slot table never grew past the number of children alive at once (one a thread).
    #[test]
    fn concurrent_churn_leaves_a_long_lived_parent_empty() {
        const THREADS: usize = 4;
        let parent = Signal::new();
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let parent = &parent;
                scope.spawn(move || {
                    for i in 0..if cfg!(miri) { 20 } else { 2_000 } {
                        let c = parent.child();
                        match (i + t) % 4 {
                            0 => {
                                c.close();
                            }
                            1 => {
                                let g = c.child();
                                drop(c);
                                drop(g);
                                continue;
                            }
                            2 => {
                                let g = c.child_with_timeout(Duration::ZERO);
                                assert!(g.is_closed());
                            }
                            _ => {}
                        }
                        drop(c);
                    }
                });
            }
        });
        assert_eq!(slots_in_use(&parent), 0);
        assert!(lock(&parent.node.children).slots.len() <= THREADS);
        assert_eq!(parent.node.handles.load(Ordering::Relaxed), 1);
        assert!(!parent.is_closed());
    }

    #[test]
    fn close_empties_the_slots() {
        let parent = Signal::new();
        let kids: Vec<_> = (0..10).map(|_| parent.child()).collect();
        assert_eq!(slots_in_use(&parent), 10);
        parent.close();
        assert_eq!(slots_in_use(&parent), 0);
        assert!(kids.iter().all(Signal::is_closed));
    }
}
