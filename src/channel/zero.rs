//! The rendezvous flavor (`bounded(0)`): a small mutex-protected hand-off. Why a lock
//! here, and how it works, is in the module doc of [`channel`](super), "Rendezvous".

use super::array::spin;
use super::{Fail, Refused, Until};
use crate::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use crate::sync::{lock, Arc, Mutex};
use crate::wait;
use crossbeam_utils::Backoff;
use std::collections::VecDeque;

/// A blocked thread's own wake-up word: 0 while it waits, 1 once a partner or a
/// closer has dealt with it. Set only under the channel's lock; waited on outside it.
type Token = Arc<AtomicU32>;

struct Entry {
    id: u64,
    token: Token,
}

struct Inner<T> {
    /// Blocked senders with their values, oldest first. An entry leaves when a
    /// receiver takes its value (which is the send's completion), or when its sender
    /// gives up and takes the value back.
    senders: VecDeque<(Entry, T)>,
    /// Blocked receivers with nothing yet, oldest first.
    receivers: VecDeque<Entry>,
    /// Values handed by a sender to a specific blocked receiver (by id), not yet
    /// picked up by it. The send completed when the value was put here.
    handed: Vec<(u64, T)>,
    next_id: u64,
    closed: bool,
}

pub(super) struct Channel<T> {
    inner: Mutex<Inner<T>>,
    /// Mirrors `inner.closed` for a lock-free `is_closed`. Written under the lock.
    closed: AtomicBool,
}

/// Sets `token` (under the lock) so its owner stops waiting; the caller wakes it with
/// [`wake`] after unlocking.
fn notify(token: &Token) {
    // Ordering: Release pairs with the Acquire loads in `block`; the lock orders the
    // data, this only ends the wait.
    token.store(1, Ordering::Release);
}

fn wake(token: &Token) {
    wait::wake_one(&**token);
}

impl<T> Channel<T> {
    pub(super) fn new() -> Self {
        Channel {
            inner: Mutex::new(Inner {
                senders: VecDeque::new(),
                receivers: VecDeque::new(),
                handed: Vec::new(),
                next_id: 0,
                closed: false,
            }),
            closed: AtomicBool::new(false),
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        // Ordering: Acquire pairs with the Release store in `close`.
        self.closed.load(Ordering::Acquire)
    }

    /// Hands `value` to a blocked receiver, if there is one.
    pub(super) fn try_send(&self, value: T) -> Result<(), (T, Refused)> {
        let mut g = lock(&self.inner);
        if g.closed {
            return Err((value, Refused::Closed));
        }
        match g.receivers.pop_front() {
            Some(r) => {
                g.handed.push((r.id, value));
                notify(&r.token);
                drop(g);
                wake(&r.token);
                Ok(())
            }
            None => Err((value, Refused::Full)),
        }
    }

    /// Takes the value of a blocked sender, if there is one: `Ok(None)` if none and
    /// open, `Err(())` if closed.
    pub(super) fn try_recv(&self) -> Result<Option<T>, ()> {
        let mut g = lock(&self.inner);
        if g.closed {
            return Err(());
        }
        match g.senders.pop_front() {
            Some((s, v)) => {
                notify(&s.token);
                drop(g);
                wake(&s.token);
                Ok(Some(v))
            }
            None => Ok(None),
        }
    }

    /// Sends: completes when a receiver has taken the value.
    pub(super) fn send(&self, value: T, until: Until<'_>) -> Result<(), (T, Fail)> {
        let mut g = lock(&self.inner);
        if g.closed {
            return Err((value, Fail::Closed));
        }
        if let Some(r) = g.receivers.pop_front() {
            g.handed.push((r.id, value));
            notify(&r.token);
            drop(g);
            wake(&r.token);
            return Ok(());
        }
        if let Some(fail) = until.expired() {
            return Err((value, fail));
        }
        let id = g.next_id;
        g.next_id += 1;
        let token: Token = Arc::new(AtomicU32::new(0));
        g.senders.push_back((
            Entry {
                id,
                token: token.clone(),
            },
            value,
        ));
        drop(g);
        loop {
            let notified = block(&token, until);
            let mut g = lock(&self.inner);
            let Some(pos) = g.senders.iter().position(|(e, _)| e.id == id) else {
                // A receiver took the value: the send is complete.
                return Ok(());
            };
            let fail = if g.closed {
                Some(Fail::Closed)
            } else if notified {
                None
            } else {
                until.expired()
            };
            if let Some(fail) = fail {
                let (_, value) = g.senders.remove(pos).expect("position found above");
                return Err((value, fail));
            }
        }
    }

    /// Receives: takes a blocked sender's value, or waits for a sender to hand one.
    pub(super) fn recv(&self, until: Until<'_>) -> Result<T, Fail> {
        let mut g = lock(&self.inner);
        if g.closed {
            return Err(Fail::Closed);
        }
        if let Some((s, v)) = g.senders.pop_front() {
            notify(&s.token);
            drop(g);
            wake(&s.token);
            return Ok(v);
        }
        if let Some(fail) = until.expired() {
            return Err(fail);
        }
        let id = g.next_id;
        g.next_id += 1;
        let token: Token = Arc::new(AtomicU32::new(0));
        g.receivers.push_back(Entry {
            id,
            token: token.clone(),
        });
        drop(g);
        loop {
            let notified = block(&token, until);
            let mut g = lock(&self.inner);
            if let Some(pos) = g.handed.iter().position(|(r, _)| *r == id) {
                // A sender handed us a value: take it, even if we are also late.
                let (_, v) = g.handed.swap_remove(pos);
                return Ok(v);
            }
            let fail = if g.closed {
                Some(Fail::Closed)
            } else if notified {
                None
            } else {
                until.expired()
            };
            if let Some(fail) = fail {
                if let Some(pos) = g.receivers.iter().position(|e| e.id == id) {
                    g.receivers.remove(pos);
                }
                return Err(fail);
            }
            if notified {
                // Woken without a value and not closed: cannot happen (only a hand-off
                // or a close sets the token), but waiting again is always safe.
                // Ordering: Relaxed: we hold the lock, under which every `notify` of
                // this token happens, so the lock orders this reset with them.
                token.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Closes; wakes every blocked sender (they take their values back) and receiver.
    pub(super) fn close(&self) -> bool {
        let mut g = lock(&self.inner);
        if g.closed {
            return false;
        }
        g.closed = true;
        // Ordering: Release pairs with the Acquire load in `is_closed`.
        self.closed.store(true, Ordering::Release);
        let mut tokens: Vec<Token> = Vec::with_capacity(g.senders.len() + g.receivers.len());
        for (e, _) in g.senders.iter() {
            notify(&e.token);
            tokens.push(e.token.clone());
        }
        for e in g.receivers.drain(..) {
            notify(&e.token);
            tokens.push(e.token);
        }
        drop(g);
        for t in &tokens {
            wake(t);
        }
        true
    }
}

/// Waits until `token` is set or, for a bounded wait, until the sleep ends (the
/// deadline, the signal's close, or a spurious wake-up) so the caller can decide.
/// Returns whether the token was set.
fn block(token: &Token, until: Until<'_>) -> bool {
    let backoff = Backoff::new();
    let mut yields = 0;
    loop {
        // Ordering: Acquire pairs with the Release store in `notify`.
        if token.load(Ordering::Acquire) != 0 {
            return true;
        }
        if until.expired().is_some() {
            return false;
        }
        if spin(&backoff, &mut yields) {
            continue;
        }
        until.sleep(token, 0);
        // Ordering: Acquire, as above.
        if token.load(Ordering::Acquire) != 0 {
            return true;
        }
        if until.is_bounded() {
            // A timed or cancellable wait: let the caller recheck.
            return false;
        }
    }
}
