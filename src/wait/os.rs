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

/// `futex_waitv(2)` (Linux 5.16+) is used on these targets; elsewhere, on an older
/// kernel and under Miri (which does not emulate it), [`wait_either`] falls back to
/// polling the second word. Not on Android: its apps' seccomp filter kills the
/// process (SIGSYS) for a system call it does not allow, rather than failing it, so
/// there is no trying it safely.
#[cfg(all(
    not(miri),
    target_os = "linux",
    any(
        all(target_arch = "x86_64", target_pointer_width = "64"),
        target_arch = "aarch64",
        target_arch = "riscv64"
    )
))]
mod waitv {
    use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
    use std::time::Instant;

    /// The syscall's number: one table for every architecture listed above.
    const SYS_FUTEX_WAITV: libc::c_long = 449;
    /// `FUTEX2_SIZE_U32 | FUTEX2_PRIVATE`: a 32-bit word, process-private (it then
    /// matches the `FUTEX_WAKE_PRIVATE` wakes of `atomic-wait` and of this module).
    const FLAGS: u32 = 0x02 | 128;

    /// The kernel's `struct futex_waitv`.
    #[repr(C)]
    struct Waiter {
        val: u64,
        uaddr: u64,
        flags: u32,
        reserved: u32,
    }

    /// 0: not tried yet, 1: works, 2: not available (ENOSYS), denied (EPERM) or
    /// refused (EINVAL): every call falls back.
    static SUPPORT: AtomicU8 = AtomicU8::new(0);

    /// Whether a call has reached the kernel.
    #[cfg(test)]
    pub(super) fn tried() -> bool {
        // Ordering: Relaxed, as below.
        SUPPORT.load(Ordering::Relaxed) != 0
    }

    /// Sleeps on both words; false if the kernel lacks `futex_waitv` (nothing slept).
    pub(super) fn wait2(words: [(&AtomicU32, u32); 2], deadline: Option<Instant>) -> bool {
        // Ordering: Relaxed; a cached answer about the kernel, guarding no memory.
        if SUPPORT.load(Ordering::Relaxed) == 2 {
            return false;
        }
        let waiters = words.map(|(atom, expected)| Waiter {
            val: u64::from(expected),
            uaddr: atom.as_ptr() as usize as u64,
            flags: FLAGS,
            reserved: 0,
        });
        // The timeout is absolute on CLOCK_MONOTONIC, the clock behind `Instant`.
        let mut abs = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let timeout = match deadline {
            None => core::ptr::null(),
            Some(d) => {
                let Some(left) = d.checked_duration_since(Instant::now()) else {
                    return true;
                };
                // SAFETY: `abs` is a valid, writable `timespec` on our stack.
                unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut abs) };
                let nanos = abs.tv_nsec as u64 + u64::from(left.subsec_nanos());
                let secs = (abs.tv_sec as u64)
                    .saturating_add(left.as_secs())
                    .saturating_add(nanos / 1_000_000_000);
                // A deadline beyond what `timespec` holds is as good as none.
                abs.tv_sec = libc::time_t::try_from(secs).unwrap_or(libc::time_t::MAX);
                // Below 1e9, so it fits any `c_long`.
                abs.tv_nsec = (nanos % 1_000_000_000) as libc::c_long;
                &abs as *const libc::timespec
            }
        };
        // SAFETY: `waiters` points to two initialised `futex_waitv` records whose
        // addresses are live, aligned `AtomicU32`s for the whole call (we hold
        // references to them); `timeout` is null or points to `abs` on our stack. The
        // kernel reads the words atomically and writes nothing of ours.
        let r = unsafe {
            libc::syscall(
                SYS_FUTEX_WAITV,
                waiters.as_ptr(),
                2u32,
                0u32,
                timeout,
                libc::CLOCK_MONOTONIC,
            )
        };
        let refused = |e| matches!(e, libc::ENOSYS | libc::EPERM | libc::EINVAL);
        if r < 0
            && std::io::Error::last_os_error()
                .raw_os_error()
                .is_some_and(refused)
        {
            // Not available (ENOSYS), denied by a seccomp filter (EPERM), or refused
            // by a kernel that does not know the call's form (EINVAL): fall back for
            // good, rather than return at once from every wait and spin.
            // Ordering: Relaxed, as above.
            SUPPORT.store(2, Ordering::Relaxed);
            return false;
        }
        // Woken, EAGAIN (a word had changed), ETIMEDOUT, EINTR: all a (possibly
        // spurious) return to the caller.
        // Ordering: Relaxed, as above.
        SUPPORT.store(1, Ordering::Relaxed);
        true
    }
}

/// The targets without `futex_waitv`: every call falls back.
#[cfg(not(all(
    not(miri),
    target_os = "linux",
    any(
        all(target_arch = "x86_64", target_pointer_width = "64"),
        target_arch = "aarch64",
        target_arch = "riscv64"
    )
)))]
mod waitv {
    use std::sync::atomic::AtomicU32;
    use std::time::Instant;

    /// Nothing to try here.
    #[cfg(test)]
    pub(super) fn tried() -> bool {
        true
    }

    pub(super) fn wait2(_: [(&AtomicU32, u32); 2], _: Option<Instant>) -> bool {
        false
    }
}

/// How long a fallback wait sleeps on the first word before it looks at the second.
const POLL_SLICE: std::time::Duration = std::time::Duration::from_millis(1);

/// Sleeps while both words hold their values; see [`super::wait_either`].
pub(super) fn wait_either(
    a: &AtomicU32,
    va: u32,
    b: &AtomicU32,
    vb: u32,
    deadline: Option<Instant>,
) {
    if waitv::wait2([(a, va), (b, vb)], deadline) {
        return;
    }
    // Fallback: sleep on `a` in slices, so a change of `b` is seen within one slice.
    // Ordering: Relaxed; the caller reloads both words with its own ordering.
    if b.load(std::sync::atomic::Ordering::Relaxed) != vb {
        return;
    }
    let slice = Instant::now().checked_add(POLL_SLICE);
    let until = match (deadline, slice) {
        (Some(d), Some(s)) => Some(d.min(s)),
        (d, s) => d.or(s),
    };
    match until {
        Some(u) => wait_until(a, va, u),
        None => wait(a, va),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    /// A sleeper on two words, woken through each word in turn (`wake_all` on the
    /// second, `wake_one` on the first); each round loops until its word changed,
    /// so a lost wake-up hangs the test.
    #[test]
    fn wait_either_wakes_through_either_word() {
        let words = std::sync::Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
        for which in [1usize, 0] {
            let w = words.clone();
            let t = std::thread::spawn(move || {
                let words = &*w;
                while words[which].load(Ordering::Acquire) == 0 {
                    wait_either(&words[0], 0, &words[1], 0, None);
                }
            });
            std::thread::sleep(Duration::from_millis(20));
            words[which].store(1, Ordering::Release);
            if which == 1 {
                wake_all(&words[1]);
            } else {
                wake_one(&words[0]);
            }
            t.join().unwrap();
            words[which].store(0, Ordering::Relaxed);
        }
        assert!(
            waitv::tried(),
            "futex_waitv was tried where the target has it"
        );
    }

    /// A single-word timed sleep whose deadline is now or already past returns at
    /// once, with the word unchanged and no waker (a sleep here would hang the test).
    #[test]
    fn wait_until_a_passed_deadline_returns_at_once() {
        let a = AtomicU32::new(0);
        let now = Instant::now();
        wait_until(&a, 0, now);
        if let Some(past) = now.checked_sub(Duration::from_secs(1)) {
            wait_until(&a, 0, past);
        }
    }

    /// A sleep with a deadline and no waker returns once the deadline has passed; a
    /// deadline already past returns at once; a changed word returns at once.
    #[test]
    fn wait_either_times_out_and_compares() {
        let (a, b) = (AtomicU32::new(0), AtomicU32::new(0));
        let deadline = Instant::now() + Duration::from_millis(5);
        while Instant::now() < deadline {
            wait_either(&a, 0, &b, 0, Some(deadline));
        }
        wait_either(
            &a,
            0,
            &b,
            0,
            Some(Instant::now() - Duration::from_millis(1)),
        );
        wait_either(&a, 1, &b, 0, None);
        wait_either(&a, 0, &b, 1, None);
    }
}
