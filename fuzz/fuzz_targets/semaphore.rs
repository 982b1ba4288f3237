//! A semaphore driven by an op sequence, single-threaded, compared with a plain model:
//! an integer of available permits, a closed flag, and the list of permits held.
#![no_main]

use arbitrary::Arbitrary;
use atomkit::semaphore::{Permit, Semaphore, TryAcquireError};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

#[derive(Arbitrary, Debug)]
enum Op {
    /// `try_acquire_many(n)`; `n` is sometimes above `MAX_PERMITS`.
    TryAcquire(u32),
    /// `acquire_many_timeout(n, 0)`: a timed acquire that never sleeps long.
    AcquireNow(u8),
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

fuzz_target!(|input: (u16, Vec<Op>)| {
    let (initial, ops) = input;
    let sem = Semaphore::new(initial as usize);
    let mut avail = initial as u64;
    let mut closed = false;
    let mut held: Vec<(Permit<'_>, u64)> = Vec::new();
    let mut outstanding = 0u64;
    for op in ops {
        match op {
            Op::TryAcquire(n) => {
                let n = n as u64 % (MAX + 3);
                match sem.try_acquire_many(n as usize) {
                    Ok(p) => {
                        assert!(!closed && n <= avail);
                        assert_eq!(p.num_permits() as u64, n);
                        avail -= n;
                        outstanding += n;
                        held.push((p, n));
                    }
                    Err(TryAcquireError::TooMany) => assert!(n > MAX),
                    Err(TryAcquireError::Closed) => assert!(closed && n <= MAX),
                    Err(TryAcquireError::NoPermits) => assert!(!closed && n <= MAX && n > avail),
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            Op::AcquireNow(n) => {
                let n = n as u64;
                match sem.acquire_many_timeout(n as usize, Duration::ZERO) {
                    Ok(p) => {
                        assert!(!closed && n <= avail);
                        avail -= n;
                        outstanding += n;
                        held.push((p, n));
                    }
                    Err(e) if e.is_closed() => assert!(closed),
                    Err(e) => {
                        assert!(e.is_timeout());
                        assert!(!closed && n > avail);
                    }
                }
            }
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
        }
        assert_eq!(sem.available_permits() as u64, avail);
        assert_eq!(sem.is_closed(), closed);
    }
    drop(held);
    assert_eq!(sem.available_permits() as u64, avail + outstanding);
});
