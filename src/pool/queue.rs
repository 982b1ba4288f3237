//! The pool's job queue when built without the channel: a bounded MPMC queue made of
//! an [`ArrayQueue`] and two [`Semaphore`]s (free slots and queued items), with the
//! subset of the channel's API the pool uses.
//!
//! Closing must never strand an accepted item: a sender that holds a slot permit
//! when the queue closes still pushes, and receivers must keep receiving until that
//! push lands. So the `senders` word counts senders in flight next to a `CLOSED` bit,
//! and whoever brings it to "closed, nobody in flight" closes the items semaphore;
//! receivers that find it closed pop what is left and then report closed.

use crate::queue::ArrayQueue;
use crate::semaphore::{AcquireTimeoutError, AcquireUntilError, Semaphore, TryAcquireError};
use crate::signal::{Cause, Signal};
use crate::sync::atomic::{AtomicU32, Ordering};
use crate::sync::time::Instant;
use crate::sync::Arc;

/// `senders` word: bit 31 set once the queue is closed; the rest counts senders
/// between their increment and decrement.
const CLOSED: u32 = 1 << 31;

struct Chan<T> {
    queue: ArrayQueue<T>,
    /// Free places (capacity minus queued minus being pushed).
    slots: Semaphore,
    /// Items pushed and not yet claimed by a receiver.
    items: Semaphore,
    /// `CLOSED | senders in flight`.
    senders: AtomicU32,
}

pub(super) struct Sender<T>(Arc<Chan<T>>);
pub(super) struct Receiver<T>(Arc<Chan<T>>);

/// Cloning does not count senders: the pool always closes the queue explicitly.
impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver(self.0.clone())
    }
}

/// The largest capacity: the semaphore's permit limit.
pub(super) const MAX_CAPACITY: usize = Semaphore::MAX_PERMITS;

/// `cap` must be in `1..=MAX_CAPACITY` (checked by the builder).
pub(super) fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        queue: ArrayQueue::new(cap),
        slots: Semaphore::new(cap),
        items: Semaphore::new(0),
        senders: AtomicU32::new(0),
    });
    (Sender(chan.clone()), Receiver(chan))
}

pub(super) struct SendError<T>(T);

impl<T> SendError<T> {
    pub(super) fn into_inner(self) -> T {
        self.0
    }
}

pub(super) enum TrySendError<T> {
    Full(T),
    Closed(T),
}

pub(super) enum SendTimeoutError<T> {
    Timeout(T),
    Closed(T),
}

pub(super) enum SendUntilError<T> {
    Cancelled(T, Cause),
    Closed(T),
}

/// Why a send could not take a slot.
enum Refused {
    Full,
    Timeout,
    Cancelled(Cause),
    Closed,
}

impl<T> Chan<T> {
    /// Ends a send (accepted or not). The decrement that leaves the word at "closed,
    /// nobody in flight" closes `items`: every accepted push has landed by then.
    fn leave(&self) {
        // Ordering: AcqRel; Release publishes our push to the last sender out, whose
        // Acquire (through the RMW chain on this word) orders every push before its
        // `items.close()`, which receivers observe with Acquire before popping.
        if self.senders.fetch_sub(1, Ordering::AcqRel) == CLOSED | 1 {
            self.items.close();
        }
    }

    fn send_with(
        &self,
        value: T,
        acquire: impl FnOnce(&Semaphore) -> Result<(), Refused>,
    ) -> Result<(), (T, Refused)> {
        // Ordering: Acquire pairs with `close`'s AcqRel; the count and the bit share
        // one word, so a sender either is counted before the close or sees it.
        if self.senders.fetch_add(1, Ordering::Acquire) & CLOSED != 0 {
            self.leave();
            return Err((value, Refused::Closed));
        }
        if let Err(r) = acquire(&self.slots) {
            self.leave();
            return Err((value, r));
        }
        // We hold a slot: there is room (slots permits <= free places).
        if self.queue.push(value).is_err() {
            unreachable!("a slot permit guarantees room in the queue");
        }
        self.items.add_permits(1);
        self.leave();
        Ok(())
    }

    fn close(&self) -> bool {
        // Ordering: AcqRel; see `leave`.
        let prev = self.senders.fetch_or(CLOSED, Ordering::AcqRel);
        self.slots.close();
        if prev == 0 {
            self.items.close();
        }
        prev & CLOSED == 0
    }

    /// Takes one item after winning an `items` permit (`permit`), or after `items`
    /// closed. With a permit the item can still be gone: once `items` is closed,
    /// receivers pop without permits and may take it. That happens only after every
    /// accepted push has landed (`leave`), so `None` then means closed and drained.
    fn take(&self, permit: bool) -> Option<T> {
        let v = self.queue.pop();
        if v.is_some() || permit {
            // A claimed item frees a place.
            self.slots.add_permits(1);
        }
        v
    }
}

impl<T> Sender<T> {
    pub(super) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.0
            .send_with(value, |s| match s.try_acquire() {
                Ok(p) => {
                    p.forget();
                    Ok(())
                }
                Err(TryAcquireError::Closed) => Err(Refused::Closed),
                Err(_) => Err(Refused::Full),
            })
            .map_err(|(v, r)| match r {
                Refused::Closed => TrySendError::Closed(v),
                _ => TrySendError::Full(v),
            })
    }

    pub(super) fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.0
            .send_with(value, |s| match s.acquire() {
                Ok(p) => {
                    p.forget();
                    Ok(())
                }
                Err(_) => Err(Refused::Closed),
            })
            .map_err(|(v, _)| SendError(v))
    }

    pub(super) fn send_deadline(
        &self,
        value: T,
        deadline: Instant,
    ) -> Result<(), SendTimeoutError<T>> {
        self.0
            .send_with(value, |s| match s.acquire_deadline(deadline) {
                Ok(p) => {
                    p.forget();
                    Ok(())
                }
                Err(AcquireTimeoutError::Timeout) => Err(Refused::Timeout),
                Err(_) => Err(Refused::Closed),
            })
            .map_err(|(v, r)| match r {
                Refused::Timeout => SendTimeoutError::Timeout(v),
                _ => SendTimeoutError::Closed(v),
            })
    }

    pub(super) fn send_until(&self, value: T, signal: &Signal) -> Result<(), SendUntilError<T>> {
        self.0
            .send_with(value, |s| match s.acquire_until(signal) {
                Ok(p) => {
                    p.forget();
                    Ok(())
                }
                Err(AcquireUntilError::Cancelled(c)) => Err(Refused::Cancelled(c)),
                Err(_) => Err(Refused::Closed),
            })
            .map_err(|(v, r)| match r {
                Refused::Cancelled(c) => SendUntilError::Cancelled(v, c),
                _ => SendUntilError::Closed(v),
            })
    }

    pub(super) fn close(&self) -> bool {
        self.0.close()
    }
}

impl<T> Receiver<T> {
    /// Blocks for an item; `Err` once the queue is closed and drained.
    pub(super) fn recv(&self) -> Result<T, ()> {
        match self.0.items.acquire() {
            Ok(p) => {
                p.forget();
                self.0.take(true).ok_or(())
            }
            Err(_) => self.0.take(false).ok_or(()),
        }
    }

    pub(super) fn try_recv(&self) -> Result<T, ()> {
        match self.0.items.try_acquire() {
            Ok(p) => {
                p.forget();
                self.0.take(true).ok_or(())
            }
            Err(TryAcquireError::Closed) => self.0.take(false).ok_or(()),
            Err(_) => Err(()),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.0.queue.len()
    }
}
