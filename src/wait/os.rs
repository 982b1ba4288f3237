//! The std build of the wait layer: `atomic-wait` for untimed waits, the platform's
//! timed futex (or a polling fallback) for timed ones.

use std::sync::atomic::AtomicU32;
use std::time::Instant;

#[inline]
pub(super) fn wait(atom: &AtomicU32, expected: u32) {
    atomic_wait::wait(atom, expected);
}

#[inline]
pub(super) fn wake_one(atom: *const AtomicU32) {
    atomic_wait::wake_one(atom);
}

#[inline]
pub(super) fn wake_all(atom: *const AtomicU32) {
    atomic_wait::wake_all(atom);
}

/// Linux / Android: `FUTEX_WAIT_PRIVATE` with a relative timeout. The kernel compares
/// the word and enqueues the thread atomically; EINTR, EAGAIN and ETIMEDOUT all come
/// back to the caller as a (possibly spurious) return.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn wait_until(atom: &AtomicU32, expected: u32, deadline: Instant) {
    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
        return;
    };
    if left.is_zero() {
        return;
    }
    // A timeout beyond what `timespec` holds is as good as no timeout.
    let secs = libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX);
    let ts = libc::timespec {
        tv_sec: secs,
        // Always below 1e9, so it fits any `c_long`.
        tv_nsec: left.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `atom` is a live, aligned `AtomicU32` for the whole call (we hold a
    // reference to it); `ts` lives on our stack across the call; the other arguments
    // are ignored by FUTEX_WAIT. The kernel reads the word atomically and never writes it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            atom.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
            core::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Other platforms: poll with sleeps that grow from 50 µs to 1 ms. Correct — a wake-up
/// is never lost, because the caller rechecks the word — but up to 1 ms late.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn wait_until(atom: &AtomicU32, expected: u32, deadline: Instant) {
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    let mut slice = Duration::from_micros(50);
    loop {
        // Ordering: Relaxed is enough; the caller reloads the word with its own
        // ordering after we return.
        if atom.load(Ordering::Relaxed) != expected {
            return;
        }
        let now = Instant::now();
        let Some(left) = deadline.checked_duration_since(now) else {
            return;
        };
        if left.is_zero() {
            return;
        }
        std::thread::sleep(slice.min(left));
        slice = (slice * 2).min(Duration::from_millis(1));
    }
}
