//! The wait layer: sleep on an `AtomicU32` until it changes, a deadline passes, or a
//! waker calls; wake one or all sleepers.
//!
//! This is a futex in three builds:
//!
//! - **std**: untimed waits go through `atomic-wait` (futex on Linux, `WaitOnAddress`
//!   on Windows, `ulock` on macOS, `_umtx_op` on FreeBSD). Timed waits on Linux and
//!   Android call `futex(FUTEX_WAIT_PRIVATE)` with a relative timeout themselves,
//!   because `atomic-wait` has no timed form. On the other platforms `atomic-wait`
//!   supports, a timed wait polls: it sleeps in slices that grow from 50 µs to 1 ms
//!   and rechecks the word, which is correct (a caller only ever sees a spurious
//!   wake-up) but wakes later than a futex would. Those are the platforms the crate
//!   builds on: Linux, Android, Windows, macOS and iOS, FreeBSD.
//! - **loom / shuttle**: a registry of sleepers keyed by address, fresh for every
//!   model execution. `wait` compares the word and enqueues itself under the
//!   registry's lock, exactly as the kernel does under its hash-bucket lock, then
//!   blocks on the checker's own primitive, so a missing wake-up shows as a deadlock
//!   the checker reports. A timed wait gives up at a point the checker chooses, and
//!   then moves the crate's clock (`sync::time::now`) past its deadline.
//!
//! # The caller's contract
//!
//! 1. **Spurious wake-ups happen.** A return says nothing; the caller reloads the word
//!    and decides again, in a loop.
//! 2. **Compare, then sleep, atomically.** `wait(a, v)` sleeps only if `a` still holds
//!    `v` at the moment it enqueues, so a waker that changes the word and then wakes
//!    can never be missed. Every protocol in atomkit puts its "someone sleeps" flag in
//!    the same word it waits on, pairs them through a `SeqCst` fence, or (the
//!    channel) orders them by read-modify-writes on shared stripe words.
//! 3. **Wakers never touch freed memory.** The wake functions take a raw pointer and
//!    never dereference it: the kernel only hashes the address. The pattern every
//!    primitive follows is: (a) learn whether anyone sleeps from the *same* atomic
//!    read-modify-write that publishes the change (so nothing is read afterwards),
//!    (b) then call `wake_*` with the address. Between (a) and (b) the woken thread
//!    may already have returned and freed the word: that is harmless, because a wake
//!    on a dead or reused address costs at most a spurious wake-up elsewhere, which
//!    rule 1 allows. glibc's bug 12674 (`sem_post` reading the waiter count after
//!    the increment that let a waiter free the semaphore) is the failure this rules
//!    out.

use crate::sync::atomic::AtomicU32;
use crate::sync::time::Instant;

#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
mod os;
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
use os as imp;

#[cfg(any(atomkit_loom, atomkit_shuttle))]
pub(crate) mod model;
#[cfg(any(atomkit_loom, atomkit_shuttle))]
use model as imp;

/// Sleeps while `atom` holds `expected`, until woken. May return spuriously.
#[inline]
pub(crate) fn wait(atom: &AtomicU32, expected: u32) {
    imp::wait(atom, expected);
}

/// Sleeps while `atom` holds `expected`, until woken or `deadline` passes.
/// May return spuriously; the caller checks its condition and the clock
/// (`sync::time::now`) afterwards.
#[inline]
pub(crate) fn wait_until(atom: &AtomicU32, expected: u32, deadline: Instant) {
    imp::wait_until(atom, expected, deadline);
}

/// Like [`wait_until`] with an optional deadline.
#[inline]
#[allow(dead_code)]
pub(crate) fn wait_maybe_until(atom: &AtomicU32, expected: u32, deadline: Option<Instant>) {
    match deadline {
        Some(d) => wait_until(atom, expected, d),
        None => wait(atom, expected),
    }
}

/// Sleeps while `a` holds `va` and `b` holds `vb`, until a waker calls on either word
/// or `deadline` passes. May return spuriously.
///
/// On Linux (x86-64, AArch64, RISC-V 64) with a 5.16+ kernel this is one
/// `futex_waitv` call; elsewhere (Android included, whose seccomp filter would kill
/// the process for trying it, and under Miri) it sleeps on `a` in slices of 1 ms and
/// looks at `b` between them (a change of `b` is then seen up to 1 ms late). A
/// `wake_one` on either word may pick this sleeper, so a caller that gives up after a
/// wake must first retry what it waited for (it may have been handed the one wake-up).
#[inline]
pub(crate) fn wait_either(
    a: &AtomicU32,
    va: u32,
    b: &AtomicU32,
    vb: u32,
    deadline: Option<Instant>,
) {
    imp::wait_either(a, va, b, vb, deadline);
}

/// Wakes at most one thread sleeping on `atom`. The pointer may dangle: it is never
/// dereferenced (contract rule 3).
#[inline]
#[allow(dead_code)]
pub(crate) fn wake_one(atom: *const AtomicU32) {
    imp::wake_one(atom);
}

/// Wakes every thread sleeping on `atom`. The pointer may dangle: it is never
/// dereferenced (contract rule 3).
#[inline]
pub(crate) fn wake_all(atom: *const AtomicU32) {
    imp::wake_all(atom);
}
