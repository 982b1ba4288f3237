//! The pool of free slot indices: a Treiber stack (R. K. Treiber, "Systems
//! Programming: Coping with Parallelism", IBM RJ 5118, 1986) whose top word carries
//! a tag against ABA. [`ArrayQueue`](super::ArrayQueue) takes a free index here,
//! fills the slot and appends the index to its SCQ ring; a `pop` gives the index back
//! here after moving the value out. The module documentation of [`queue`](super)
//! describes the layout, the invariants and the orderings this file refers to.

use super::stall::point;
use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

/// Where the stack finds `below[i]`, the link under index `i`: the links live next
/// to the data slots (one cache line carries both from a `pop` to the next `push`).
pub(super) trait Links {
    /// `below[i]`: the index under `i` while `i` is on the stack (`nil` at the
    /// bottom). Written by `give(i)`, the one thread holding `i`, before the CAS
    /// that puts `i` on top; read by `take`, possibly stale (then its CAS fails).
    fn below(&self, i: u64) -> &AtomicU32;
}

/// A lock-free LIFO of the indices `0..cap`, each present at most once.
pub(super) struct FreeList {
    /// `tag << bits | top`: `top` is the index on top of the stack or `nil` (all
    /// ones in the low `bits`); `tag` counts the successful CASes on this word.
    /// Written by `take` and `give` (CAS only).
    top: CachePadded<AtomicU64>,
    /// Width of the index field: enough for `cap` indices plus `nil`.
    bits: u32,
}

impl FreeList {
    /// A stack for the indices `0..cap`, to hold all of them with `0` on top once
    /// each `below[i]` starts as [`initial_below(i)`](Self::initial_below).
    pub(super) fn new_full(cap: usize) -> FreeList {
        // `cap <= 2^31`, so `bits <= 32`, and nil (`2^bits - 1`, at least `cap`) is never
        // a valid index.
        let bits = (cap as u64 + 1).next_power_of_two().trailing_zeros();
        FreeList {
            top: CachePadded::new(AtomicU64::new(0)),
            bits,
        }
    }

    /// The initial `below[i]` of a full stack of `cap` indices: `i + 1`, or nil.
    pub(super) fn initial_below(&self, i: usize, cap: usize) -> u32 {
        if i + 1 < cap {
            i as u32 + 1
        } else {
            self.nil() as u32
        }
    }

    #[inline]
    fn nil(&self) -> u64 {
        (1u64 << self.bits) - 1
    }

    /// `(tag + 1) << bits | index`: the next value of `top` with `index` on top.
    #[inline]
    fn next_top(&self, top: u64, index: u64) -> u64 {
        ((top >> self.bits).wrapping_add(1) << self.bits) | index
    }

    /// Takes an index, or `None` if the stack was empty when `top` was read.
    #[inline]
    pub(super) fn take(&self, links: &(impl Links + ?Sized)) -> Option<u64> {
        // Ordering: Acquire pairs with the Release CAS in `give` that put this top
        // there: it makes that thread's `below` store visible to the load below
        // (and, through the index, the end of its read of the data slot before
        // our write, invariant 4).
        let mut top = self.top.load(Ordering::Acquire);
        loop {
            point("free list: read the top");
            let index = top & self.nil();
            if index == self.nil() {
                return None;
            }
            // Ordering: Relaxed; made visible by the Acquire read of `top` above. A
            // value from a later `give` (the index was taken and given back since)
            // is harmless: `top`'s tag changed too, so the CAS below fails.
            let below = links.below(index).load(Ordering::Relaxed) as u64;
            // Ordering: Acquire on success, as for the load above (this is the read
            // that hands us the index); Acquire on failure to re-read like it.
            match self.top.compare_exchange_weak(
                top,
                self.next_top(top, below),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(index),
                Err(actual) => top = actual,
            }
        }
    }

    /// Puts back `index`, which the calling thread holds (taken from this stack,
    /// or from the ring with its value moved out).
    #[inline]
    pub(super) fn give(&self, links: &(impl Links + ?Sized), index: u64) {
        // Ordering: Relaxed; the CAS below validates it.
        let mut top = self.top.load(Ordering::Relaxed);
        loop {
            // Ordering: Relaxed; published by the Release CAS below. Only the
            // holder of `index` writes `below[index]` (invariant 7).
            links
                .below(index)
                .store((top & self.nil()) as u32, Ordering::Relaxed);
            point("free list: linked the index");
            // Ordering: Release pairs with the Acquire load / CAS in `take`: it
            // publishes the `below` store above and orders this thread's read of
            // the data slot before the next taker's write (invariant 4).
            match self.top.compare_exchange_weak(
                top,
                self.next_top(top, index),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => top = actual,
            }
        }
    }

    /// The top word, for debugging a failing loom model.
    #[cfg(atomkit_loom)]
    pub(super) fn dump(&self) -> String {
        let top = self.top.load(Ordering::SeqCst);
        format!("top {} tag {}", top & self.nil(), top >> self.bits)
    }
}
