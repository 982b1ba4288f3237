//! A semaphore driven by an op sequence, single-threaded, compared with a plain model:
//! an integer of available permits, a closed flag, and the list of permits held.
//!
//! Nothing here may block for good, so the blocking `acquire_many` runs only when the
//! model says it returns at once (zero permits, enough free, closed, or too many), and
//! the timed and cancellable acquires run with a deadline already past or a signal
//! already closed. Those still go through the waiter path when permits are short (the
//! spin, then the give-up checks before registering), which is what they exercise.
#![no_main]

use arbitrary::Arbitrary;
use atomkit::semaphore::{
    AcquireError, AcquireTimeoutError, AcquireUntilError, OwnedPermit, Permit, Semaphore,
    TryAcquireError,
};
use atomkit::signal::{Cause, Signal};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
enum Op {
    /// `try_acquire_many(n)` or `try_acquire_many_owned(n)`.
    TryAcquire { n: u32, owned: bool },
    /// `acquire_many(n)` or `acquire_many_owned(n)`, only when the model says it
    /// returns at once.
    Acquire { n: u32, owned: bool },
    /// `acquire_many_timeout(n, Duration::ZERO)`.
    AcquireNow(u32),
    /// `acquire_many_deadline(n, now - ago µs)`: a deadline already past.
    AcquirePast { n: u32, ago: u16 },
    /// `acquire_many_until(n, signal)` with the signal already closed, by `close` or
    /// by a deadline already past.
    AcquireCancelled { n: u32, by_deadline: bool },
    /// Drop held permit `i % len`.
    Release(u8),
    /// `forget()` held permit `i % len`.
    ForgetPermit(u8),
    /// `add_permits(n)` (skipped by the model if it would overflow).
    Add(u32),
    /// `forget_permits(n)`.
    ForgetPermits(u32),
    /// `close()`.
    Close,
}

const MAX: u64 = Semaphore::MAX_PERMITS as u64;

/// A request count, sometimes above `MAX_PERMITS` (and 0 as often as the input says).
fn want(n: u32) -> u64 {
    n as u64 % (MAX + 3)
}

/// How any acquire of `n` must end, by the docs: `TooMany` above `MAX_PERMITS`
/// whatever the state; else `Closed` once closed (zero permits included); else it
/// takes `n` if `n` are free (so zero always succeeds); else it is short (no permits,
/// timeout, or cancelled, by the kind of acquire).
#[derive(Debug, PartialEq)]
enum Outcome {
    Took,
    TooMany,
    Closed,
    Short,
}

fn expect(n: u64, avail: u64, closed: bool) -> Outcome {
    if n > MAX {
        Outcome::TooMany
    } else if closed {
        Outcome::Closed
    } else if n <= avail {
        Outcome::Took
    } else {
        Outcome::Short
    }
}

/// A held permit in either form, so that both drops and both forgets are compared.
enum Held<'a> {
    Borrowed(Permit<'a>),
    Owned(OwnedPermit),
}

impl Held<'_> {
    fn num_permits(&self) -> usize {
        match self {
            Held::Borrowed(p) => p.num_permits(),
            Held::Owned(p) => p.num_permits(),
        }
    }

    fn forget(self) {
        match self {
            Held::Borrowed(p) => p.forget(),
            Held::Owned(p) => p.forget(),
        }
    }
}

fuzz_target!(|input: (u16, Vec<Op>)| {
    let (initial, ops) = input;
    let sem = Arc::new(Semaphore::new(initial as usize));
    let mut avail = initial as u64;
    let mut closed = false;
    let mut held: Vec<(Held<'_>, u64)> = Vec::new();
    let mut outstanding = 0u64;
    for op in ops {
        // An acquire of `n` and what it returned, checked against the model below.
        let acquired: Option<(u64, Result<Held<'_>, Outcome>)> = match op {
            Op::TryAcquire { n, owned } => {
                let n = want(n);
                let r = if owned {
                    sem.clone()
                        .try_acquire_many_owned(n as usize)
                        .map(Held::Owned)
                } else {
                    sem.try_acquire_many(n as usize).map(Held::Borrowed)
                };
                Some((
                    n,
                    r.map_err(|e| match e {
                        TryAcquireError::NoPermits => Outcome::Short,
                        TryAcquireError::Closed => Outcome::Closed,
                        TryAcquireError::TooMany => Outcome::TooMany,
                        e => panic!("unexpected {e}"),
                    }),
                ))
            }
            Op::Acquire { n, owned } => {
                let n = want(n);
                if expect(n, avail, closed) == Outcome::Short {
                    // It would wait for good: no other thread releases.
                    None
                } else {
                    let r = if owned {
                        sem.clone().acquire_many_owned(n as usize).map(Held::Owned)
                    } else {
                        sem.acquire_many(n as usize).map(Held::Borrowed)
                    };
                    Some((
                        n,
                        r.map_err(|e| match e {
                            AcquireError::Closed => Outcome::Closed,
                            AcquireError::TooMany => Outcome::TooMany,
                            e => panic!("unexpected {e}"),
                        }),
                    ))
                }
            }
            Op::AcquireNow(n) | Op::AcquirePast { n, .. } => {
                let n = want(n);
                let r = if let Op::AcquirePast { ago, .. } = op {
                    let now = Instant::now();
                    let deadline = now
                        .checked_sub(Duration::from_micros(ago.into()))
                        .unwrap_or(now);
                    sem.acquire_many_deadline(n as usize, deadline)
                } else {
                    sem.acquire_many_timeout(n as usize, Duration::ZERO)
                };
                Some((
                    n,
                    r.map(Held::Borrowed).map_err(|e| match e {
                        AcquireTimeoutError::Timeout => Outcome::Short,
                        AcquireTimeoutError::Closed => Outcome::Closed,
                        AcquireTimeoutError::TooMany => Outcome::TooMany,
                        e => panic!("unexpected {e}"),
                    }),
                ))
            }
            Op::AcquireCancelled { n, by_deadline } => {
                let n = want(n);
                let (signal, cause) = if by_deadline {
                    (
                        Signal::with_timeout(Duration::ZERO),
                        Cause::DeadlineExceeded,
                    )
                } else {
                    let s = Signal::new();
                    s.close();
                    (s, Cause::Closed)
                };
                // A free permit is taken even though the signal is closed.
                let r = sem.acquire_many_until(n as usize, &signal);
                Some((
                    n,
                    r.map(Held::Borrowed).map_err(|e| match e {
                        AcquireUntilError::Cancelled(c) => {
                            assert_eq!(c, cause);
                            Outcome::Short
                        }
                        AcquireUntilError::Closed => Outcome::Closed,
                        AcquireUntilError::TooMany => Outcome::TooMany,
                        e => panic!("unexpected {e}"),
                    }),
                ))
            }
            _ => None,
        };
        if let Some((n, got)) = acquired {
            let want = expect(n, avail, closed);
            let outcome = match got {
                Ok(p) => {
                    assert_eq!(p.num_permits() as u64, n);
                    held.push((p, n));
                    avail -= n;
                    outstanding += n;
                    Outcome::Took
                }
                Err(o) => o,
            };
            assert_eq!(outcome, want, "{op:?}");
        }
        match op {
            Op::Release(i) => {
                if !held.is_empty() {
                    let (p, n) = held.swap_remove(i as usize % held.len());
                    drop(p);
                    avail += n;
                    outstanding -= n;
                }
            }
            Op::ForgetPermit(i) => {
                if !held.is_empty() {
                    let (p, n) = held.swap_remove(i as usize % held.len());
                    p.forget();
                    outstanding -= n;
                }
            }
            Op::Add(n) => {
                let n = n as u64 % (MAX + 1);
                // Keep available + held within MAX_PERMITS, so that no later release
                // overflows (that panics by design).
                if avail + outstanding + n <= MAX {
                    sem.add_permits(n as usize);
                    avail += n;
                }
            }
            Op::ForgetPermits(n) => {
                let k = sem.forget_permits(n as usize);
                assert_eq!(k as u64, (n as u64).min(avail));
                avail -= k as u64;
            }
            Op::Close => {
                assert_eq!(sem.close(), !closed);
                closed = true;
            }
            _ => {}
        }
        assert_eq!(sem.available_permits() as u64, avail);
        assert_eq!(sem.is_closed(), closed);
    }
    drop(held);
    assert_eq!(sem.available_permits() as u64, avail + outstanding);
    // Every owned permit, forgotten or dropped, gave its handle back.
    assert_eq!(Arc::strong_count(&sem), 1);
});
