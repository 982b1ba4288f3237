//! Exponential backoff with jitter, as an iterator of delays.

use crate::sync::time::Duration;
use core::fmt;

/// Exponential backoff with jitter: an [`Iterator`] of the delays to wait between
/// attempts.
///
/// The `k`-th delay (from 0) is `min(cap, base * factor^k)` (computed in `f64`
/// seconds: a relative error of up to 2^-53, which for delays of more than about
/// 100 days exceeds a nanosecond and may round down), then shortened by a
/// random fraction of up to `jitter` of itself: with `jitter = 0.5` it is uniform in
/// `[d/2, d]`, with `jitter = 1.0` ("full jitter") uniform in `[0, d]`. Jitter spreads
/// out retries that failed together, so they do not all come back at once. To that
/// end a clone of a backoff with no [`seed`](Backoff::seed) draws a seed of its own
/// (submits retried with clones of one setting jitter apart); a clone of a seeded
/// backoff repeats its delays.
///
/// `max_attempts(n)` bounds the attempts: the iterator yields the `n - 1` waits that
/// separate `n` attempts, then `None`. [`WorkerPool::submit_with_retry`] makes one
/// attempt, then one more after each delay.
///
/// Defaults: base 1 ms, factor 2, cap 100 ms, jitter 0.5, 8 attempts. Out-of-range
/// settings are clamped, never a panic: a factor below 1 (or NaN) is 1, jitter
/// outside `[0, 1]` is clamped into it, `max_attempts(0)` is 1 attempt (no delays),
/// and a delay that would overflow a `Duration` is the cap.
///
/// [`WorkerPool::submit_with_retry`]: super::WorkerPool::submit_with_retry
///
/// # Examples
///
/// ```
/// use atomkit::pool::Backoff;
/// use std::time::Duration;
///
/// let delays: Vec<Duration> = Backoff::new(Duration::from_millis(10))
///     .factor(2.0)
///     .cap(Duration::from_millis(50))
///     .jitter(0.0)
///     .max_attempts(5)
///     .collect();
/// let ms: Vec<u128> = delays.iter().map(|d| d.as_millis()).collect();
/// assert_eq!(ms, [10, 20, 40, 50]); // 4 waits between 5 attempts, capped at 50 ms
/// ```
pub struct Backoff {
    /// The next delay before jitter.
    next: Duration,
    factor: f64,
    cap: Duration,
    jitter: f64,
    /// Delays still to yield.
    left: u32,
    /// xorshift64* state; never 0.
    rng: u64,
    /// Whether `seed` set `rng`: then a clone keeps the state, else it draws its own.
    seeded: bool,
}

impl Clone for Backoff {
    fn clone(&self) -> Self {
        Backoff {
            rng: if self.seeded { self.rng } else { seed() },
            ..*self
        }
    }
}

impl Backoff {
    /// A backoff whose first delay is `base`, with the default factor (2), cap
    /// (100 ms, or `base` if that is larger), jitter (0.5) and attempts (8).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::Backoff;
    /// use std::time::Duration;
    ///
    /// let b = Backoff::new(Duration::from_millis(1));
    /// assert_eq!(b.count(), 7); // 8 attempts: 7 waits
    /// ```
    pub fn new(base: Duration) -> Self {
        Backoff {
            next: base,
            factor: 2.0,
            cap: Duration::from_millis(100).max(base),
            jitter: 0.5,
            left: 7,
            rng: seed(),
            seeded: false,
        }
    }

    /// Sets the growth factor per attempt (clamped to at least 1; NaN is 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::Backoff;
    /// use std::time::Duration;
    ///
    /// let mut b = Backoff::new(Duration::from_millis(1)).factor(3.0).jitter(0.0);
    /// assert_eq!(b.nth(2), Some(Duration::from_millis(9)));
    /// ```
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor >= 1.0 { factor } else { 1.0 };
        self
    }

    /// Sets the longest delay. A cap below the next delay lowers that delay too.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::Backoff;
    /// use std::time::Duration;
    ///
    /// let b = Backoff::new(Duration::from_secs(1)).cap(Duration::from_secs(2)).jitter(0.0);
    /// assert!(b.max_attempts(10).all(|d| d <= Duration::from_secs(2)));
    /// ```
    pub fn cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self.next = self.next.min(cap);
        self
    }

    /// Sets the jitter: the largest fraction by which a delay is randomly shortened
    /// (clamped into `[0, 1]`; NaN is 0).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::Backoff;
    /// use std::time::Duration;
    ///
    /// let d = Duration::from_millis(100);
    /// for delay in Backoff::new(d).factor(1.0).jitter(0.25).max_attempts(50) {
    ///     assert!(delay >= Duration::from_millis(75) && delay <= d);
    /// }
    /// ```
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter >= 0.0 { jitter.min(1.0) } else { 0.0 };
        self
    }

    /// Sets the number of attempts the delays separate: the iterator yields
    /// `attempts - 1` delays (`0` counts as 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::Backoff;
    /// use std::time::Duration;
    ///
    /// assert_eq!(Backoff::new(Duration::ZERO).max_attempts(3).count(), 2);
    /// assert_eq!(Backoff::new(Duration::ZERO).max_attempts(0).count(), 0);
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.left = attempts.saturating_sub(1);
        self
    }

    /// Seeds the jitter's random numbers, for reproducible delays: a clone repeats the
    /// same delays (by default each `Backoff`, and each clone, gets its own seed).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::Backoff;
    /// use std::time::Duration;
    ///
    /// let b = Backoff::new(Duration::from_millis(8)).jitter(1.0).seed(42);
    /// assert!(b.clone().eq(b));
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.rng = seed | 1;
        self.seeded = true;
        self
    }

    /// A uniform number in `[0, 1)` (xorshift64*, top 53 bits).
    fn unit(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Backoff {
    /// Base 1 ms, factor 2, cap 100 ms, jitter 0.5, 8 attempts.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(1))
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let d = self.next;
        // Saturate at the cap; `try_from_secs_f64` fails on overflow, never panics.
        // A zero delay stays zero whatever the factor (0 x infinity is NaN).
        self.next = if d.is_zero() {
            d
        } else {
            Duration::try_from_secs_f64(d.as_secs_f64() * self.factor)
                .map_or(self.cap, |n| n.min(self.cap))
        };
        if self.jitter == 0.0 {
            return Some(d);
        }
        let cut = self.jitter * self.unit();
        // Never above `d`; and no panic where rounding lands just past `Duration::MAX`.
        Some(Duration::try_from_secs_f64(d.as_secs_f64() * (1.0 - cut)).map_or(d, |j| j.min(d)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.left as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Backoff {}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backoff")
            .field("next", &self.next)
            .field("factor", &self.factor)
            .field("cap", &self.cap)
            .field("jitter", &self.jitter)
            .field("delays_left", &self.left)
            .finish()
    }
}

/// A fresh seed per backoff, from std's per-process random hash keys.
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9E37_79B9_7F4A_7C15);
    h.finish() | 1
}

#[cfg(all(test, not(any(atomkit_loom, atomkit_shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_stops() {
        let ms: Vec<u128> = Backoff::new(Duration::from_millis(1))
            .jitter(0.0)
            .cap(Duration::from_millis(10))
            .max_attempts(7)
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(ms, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn huge_factor_saturates_at_cap() {
        let b = Backoff::new(Duration::from_secs(1))
            .factor(f64::MAX)
            .cap(Duration::MAX)
            .jitter(0.0)
            .max_attempts(4);
        let v: Vec<_> = b.collect();
        assert_eq!(v, [Duration::from_secs(1), Duration::MAX, Duration::MAX]);
    }

    #[test]
    fn the_longest_delays_with_jitter_never_panic() {
        // Rounding `Duration::MAX * (1 - tiny)` lands past `Duration::MAX`.
        let b = Backoff::new(Duration::MAX).jitter(1e-17).max_attempts(4);
        assert!(b.into_iter().all(|d| d > Duration::ZERO));
        let b = Backoff::new(Duration::from_secs(1))
            .factor(f64::MAX)
            .cap(Duration::MAX)
            .jitter(1e-17)
            .max_attempts(4);
        assert_eq!(b.count(), 3);
    }

    #[test]
    fn a_zero_delay_stays_zero_whatever_the_factor() {
        let b = Backoff::new(Duration::ZERO)
            .factor(f64::INFINITY)
            .jitter(0.0)
            .max_attempts(4);
        assert_eq!(b.collect::<Vec<_>>(), [Duration::ZERO; 3]);
    }

    #[test]
    fn bad_settings_are_clamped() {
        let b = Backoff::new(Duration::from_millis(4))
            .factor(f64::NAN)
            .jitter(f64::NAN)
            .max_attempts(3);
        assert_eq!(b.collect::<Vec<_>>(), [Duration::from_millis(4); 2]);
        let b = Backoff::new(Duration::from_millis(4))
            .factor(-3.0)
            .jitter(7.0)
            .max_attempts(100);
        assert!(b.into_iter().all(|d| d <= Duration::from_millis(4)));
    }

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let d = Duration::from_millis(100);
        let v: Vec<_> = Backoff::new(d)
            .factor(1.0)
            .jitter(0.5)
            .max_attempts(200)
            .collect();
        assert!(v.iter().all(|&x| x >= d / 2 && x <= d));
        assert!(v.iter().any(|&x| x != v[0]), "jitter never varied");
    }
}
