//! One key's count: a single word that grows into cache-line-padded stripes when
//! threads collide on it (the adaptive striping of Java's `LongAdder`).
//!
//! Every word (the base and each stripe) holds a 63-bit count in bits 0..=62 and the
//! `DEAD` flag in bit 63. `kill` sets `DEAD` on every word by one swap each; an adder
//! that meets `DEAD` adds nothing and reports it, so its caller re-resolves the key.

use crate::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use core::ptr;
use crossbeam_utils::CachePadded;

/// Bit 63 of every count word: the entry was removed (see invariant 4 in the module doc).
pub(super) const DEAD: u64 = 1 << 63;
/// Bits 0..=62 of a count word: the count, modulo 2^63.
pub(super) const COUNT: u64 = DEAD - 1;
/// The counts a cell reports (`sum`, `reset`, `kill`) are taken modulo 2^56, the
/// documented wrap of every count of a `CounterMap`, whichever core holds the key
/// (the word-key core keeps 8 bits of its count words for flags). Exact all the same:
/// each word is its count modulo 2^63, and 2^56 divides 2^63.
pub(super) const REPORTED: u64 = (1 << 56) - 1;

/// Low bit of the stripes pointer: the entry was removed; no stripes may be installed.
const STRIPES_DEAD: usize = 1;

/// The stripes of a hot key, allocated once at their full size on the first collision.
struct Stripes {
    /// How many stripes adders spread over: a power of two, doubled on collisions up to
    /// `cells.len()`. A hint: written with Relaxed CAS by any adder.
    active: AtomicUsize,
    /// The stripe words; the key's count is `base` plus all of them.
    cells: Box<[CachePadded<AtomicU64>]>,
}

/// A key's count.
pub(super) struct StripedCell {
    /// The count word used until the first collision. Written by adders (CAS), resets
    /// (`fetch_and`) and `kill` (swap).
    base: AtomicU64,
    /// Null, or the key's stripes; low bit `STRIPES_DEAD` once killed. Set from null to
    /// a block once (CAS by the adder that first collides); tagged once by `kill`.
    stripes: AtomicPtr<Stripes>,
}

/// Adds `n` to a count word, modulo 2^63, keeping the `DEAD` bit clear.
#[inline]
fn bump(cur: u64, n: u64) -> u64 {
    cur.wrapping_add(n) & COUNT
}

impl StripedCell {
    pub(super) fn new() -> Self {
        StripedCell {
            base: AtomicU64::new(0),
            stripes: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Adds `n`. Returns `false` (adding nothing) if the cell was killed.
    /// `max_stripes` is the stripe count to allocate on the first collision.
    #[inline]
    pub(super) fn add(&self, n: u64, max_stripes: usize) -> bool {
        // Ordering: Acquire pairs with the AcqRel CAS in `install` that published the
        // block, so its initialised words are visible before we touch them.
        let s = self.stripes.load(Ordering::Acquire);
        if s.is_null() {
            // Ordering: Relaxed: the count is this word alone; the CAS below is an
            // atomic read-modify-write, so no increment is lost whatever we read here.
            let cur = self.base.load(Ordering::Relaxed);
            if cur & DEAD != 0 {
                return false;
            }
            // Ordering: Relaxed: counting needs only the atomicity of the RMW; nothing
            // else is published through a count word (reads of the total are taken by
            // RMWs or after a join).
            match self.base.compare_exchange(
                cur,
                bump(cur, n),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) if actual & DEAD != 0 => return false,
                Err(_) => {} // another adder won the word: contention, go striped
            }
            return self.add_striped(self.install(max_stripes), n);
        }
        self.add_striped(s, n)
    }

    /// Installs the stripes if none are there; returns the pointer now in place (maybe
    /// tagged `STRIPES_DEAD`).
    #[cold]
    fn install(&self, max_stripes: usize) -> *mut Stripes {
        let cells: Box<[CachePadded<AtomicU64>]> = (0..max_stripes.max(2))
            .map(|_| CachePadded::new(AtomicU64::new(0)))
            .collect();
        let block = Box::into_raw(Box::new(Stripes {
            active: AtomicUsize::new(2),
            cells,
        }));
        // Ordering: AcqRel: Release publishes the block's initialised words to adders
        // and resets that load the pointer with Acquire; Acquire on failure lets us use
        // a block another adder published.
        match self.stripes.compare_exchange(
            ptr::null_mut(),
            block,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => block,
            Err(current) => {
                // SAFETY: `block` came from `Box::into_raw` above and was never shared.
                drop(unsafe { Box::from_raw(block) });
                current
            }
        }
    }

    /// Adds `n` on the stripes at `s` (maybe tagged dead). Returns `false` if killed.
    fn add_striped(&self, s: *mut Stripes, n: u64) -> bool {
        if s.addr() & STRIPES_DEAD != 0 {
            return false;
        }
        // SAFETY: `s` is an untagged, non-null block pointer read from `stripes`, which
        // keeps it until the cell is dropped (invariant 5); the caller's epoch guard or
        // handle keeps the cell alive.
        let st = unsafe { &*s };
        let mut probe = probe::get();
        loop {
            // Ordering: Relaxed: `active` is only a hint for spreading adders.
            let active = st.active.load(Ordering::Relaxed);
            let cell = &st.cells[probe as usize & (active - 1)];
            // Ordering: Relaxed, as for `base` in `add`.
            let cur = cell.load(Ordering::Relaxed);
            if cur & DEAD != 0 {
                return false;
            }
            // Ordering: Relaxed, as for `base` in `add`.
            match cell.compare_exchange(cur, bump(cur, n), Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) if actual & DEAD != 0 => return false,
                Err(_) => {
                    if active < st.cells.len() {
                        // Ordering: Relaxed: a hint; losing this race is harmless.
                        let _ = st.active.compare_exchange(
                            active,
                            active * 2,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                    probe = probe::rehash(probe);
                }
            }
        }
    }

    /// The stripes pointer with its tag removed (null if none were installed).
    fn stripes(&self) -> Option<&Stripes> {
        // Ordering: Acquire pairs with the AcqRel CAS in `install`.
        let s = self.stripes.load(Ordering::Acquire);
        let s = s.map_addr(|a| a & !STRIPES_DEAD);
        // SAFETY: a non-null untagged pointer is a block installed by `install`, freed
        // only when the cell drops (invariant 5).
        unsafe { s.as_ref() }
    }

    /// Whether the cell has not been killed (as of this read: it may be killed the
    /// next instant; killing is for good).
    #[inline]
    pub(super) fn is_live(&self) -> bool {
        // Ordering: Relaxed: the base word is the first one `kill` marks, and a caller
        // relying on a kill that happens-before this read sees it by coherence; one
        // racing this read is caught by the add that follows (see `add`).
        self.base.load(Ordering::Relaxed) & DEAD == 0
    }

    /// The current count, or `None` if the cell was killed. Weakly consistent: each
    /// word is read once, at a different instant.
    pub(super) fn sum(&self) -> Option<u64> {
        // Ordering: Relaxed: a racy read of a counter; callers ask for no more.
        let b = self.base.load(Ordering::Relaxed);
        if b & DEAD != 0 {
            return None;
        }
        let mut total = b;
        if let Some(st) = self.stripes() {
            for c in st.cells.iter() {
                // Ordering: Relaxed, as above.
                let v = c.load(Ordering::Relaxed);
                total = total.wrapping_add(v & COUNT);
            }
        }
        Some(total & REPORTED)
    }

    /// Takes the count, leaving zero: each word is taken by one `fetch_and`, so every
    /// increment lands either before it (returned here) or after it (left for the
    /// next reset). Returns `None` if the cell was killed before its base was taken.
    pub(super) fn reset(&self) -> Option<u64> {
        // Ordering: Relaxed: exactness comes from each word's modification order,
        // not from ordering with other memory (see `## Memory orderings`).
        // `fetch_and(DEAD)` clears the count and keeps a `DEAD` bit: a reset never
        // revives a killed word.
        let b = self.base.fetch_and(DEAD, Ordering::Relaxed);
        if b & DEAD != 0 {
            return None;
        }
        let mut total = b;
        if let Some(st) = self.stripes() {
            for c in st.cells.iter() {
                // Ordering: Relaxed, as above.
                let v = c.fetch_and(DEAD, Ordering::Relaxed);
                if v & DEAD == 0 {
                    total = total.wrapping_add(v);
                }
            }
        }
        Some(total & REPORTED)
    }

    /// Kills the cell: takes the count and marks every word `DEAD`, so later adders
    /// add nothing and re-resolve. Called once per cell, under its shard's lock.
    pub(super) fn kill(&self) -> u64 {
        // Ordering: Relaxed: as in `reset`, the word's modification order decides.
        let b = self.base.swap(DEAD, Ordering::Relaxed);
        debug_assert_eq!(b & DEAD, 0, "a cell is killed once");
        let mut total = b & COUNT;
        // Ordering: Acquire pairs with the AcqRel CAS in `install`, so a block installed
        // before our tag is seen initialised; it is an RMW, so an `install` after it
        // fails and sees the tag.
        let mut cur = self.stripes.load(Ordering::Acquire);
        loop {
            let tagged = cur.map_addr(|a| a | STRIPES_DEAD);
            // Ordering: AcqRel/Acquire: see the load above.
            match self
                .stripes
                .compare_exchange(cur, tagged, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        // SAFETY: a non-null pointer here is a block from `install`, freed only on drop.
        if let Some(st) = unsafe { cur.as_ref() } {
            for c in st.cells.iter() {
                // Ordering: Relaxed, as for `base`.
                let v = c.swap(DEAD, Ordering::Relaxed);
                total = total.wrapping_add(v & COUNT);
            }
        }
        total & REPORTED
    }

    /// Whether the key grew stripes (for tests).
    #[cfg(test)]
    pub(super) fn is_striped(&self) -> bool {
        self.stripes().is_some()
    }
}

impl Drop for StripedCell {
    fn drop(&mut self) {
        // Ordering: Relaxed: `&mut self` means no other thread can touch the word.
        let s = self
            .stripes
            .load(Ordering::Relaxed)
            .map_addr(|a| a & !STRIPES_DEAD);
        if !s.is_null() {
            // SAFETY: `&mut self`: no adder can reach the cell any more; the block came
            // from `Box::into_raw` in `install` and is freed only here.
            drop(unsafe { Box::from_raw(s) });
        }
    }
}

/// A per-thread hint for picking a stripe, rehashed when the stripe it picked collided.
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
mod probe {
    use std::cell::Cell;

    std::thread_local! {
        static PROBE: Cell<u32> = const { Cell::new(0) };
    }

    /// This thread's probe, seeded on first use from the address of its thread-local.
    #[inline]
    pub(super) fn get() -> u32 {
        PROBE.with(|p| {
            let v = p.get();
            if v != 0 {
                return v;
            }
            let seed = (p as *const Cell<u32>).addr() as u64;
            // Bit 31 keeps it non-zero (zero means unseeded, and is a fixed point of
            // `rehash`) without touching the low bits that pick the stripe.
            let seed = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32 | 1 << 31;
            p.set(seed);
            seed
        })
    }

    /// A new probe after a collision (xorshift), remembered for this thread.
    #[inline]
    pub(super) fn rehash(mut x: u32) -> u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let _ = PROBE.try_with(|p| p.set(x));
        x
    }
}

/// Under the model checkers, the probe is derived from the thread's id, so that every
/// execution is reproducible (a thread-local would carry state across executions).
#[cfg(any(atomkit_loom, atomkit_shuttle))]
mod probe {
    use std::hash::{Hash, Hasher};

    pub(super) fn get() -> u32 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        // The models' thread ids may not implement `Hash`; their `Debug` form does.
        format!("{:?}", crate::sync::thread::current().id()).hash(&mut h);
        h.finish() as u32 | 1
    }

    pub(super) fn rehash(x: u32) -> u32 {
        x.wrapping_add(1)
    }
}
