//! The SCQ ring: a lock-free bounded FIFO of small integers (Nikolaev, DISC 2019, §4
//! and Figure 8). [`ArrayQueue`](super::ArrayQueue) passes the indices of its full
//! data slots through one of them (`aq`); the module documentation of [`queue`](super) describes the algorithm, the
//! entry layout, the invariants and the memory orderings this file refers to.

use super::stall::point;
use crate::sync::atomic::{fence, AtomicI64, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

/// One SCQ ring of `2n` entries holding at most `n` indices, each below `n`.
pub(super) struct Ring {
    /// Next position to dequeue from. Written by dequeuers (fetch-and-add).
    head: CachePadded<AtomicU64>,
    /// Next position to enqueue at, with the [`CLOSED`] bit on top. Written by
    /// enqueuers (fetch-and-add), by dequeuers that found the ring empty (`catchup`,
    /// a CAS that only moves it forward to `head`, keeping the bit) and by `close`.
    tail: CachePadded<AtomicU64>,
    /// How many more failed dequeue attempts may run before dequeuers report "empty"
    /// without looking (invariant 5). Reset to `3n - 1` by every enqueue, decremented
    /// by every failed dequeue attempt.
    threshold: CachePadded<AtomicI64>,
    /// `2n` entries: `cycle | safe | index` (see the entry table in the module doc).
    entries: Box<[AtomicU64]>,
    /// `log2(2n)`: the width of the index field and of a position's offset in a cycle.
    order: u32,
}

/// The bit of `tail` that [`Ring::close`] sets: every enqueue whose fetch-and-add
/// returns it fails (invariant 8). Positions start at `2n` and grow by one per
/// operation, so they never reach it.
const CLOSED: u64 = 1 << 63;

/// The index value that means "no index here" (all ones in the index field).
#[inline]
fn bottom(order: u32) -> u64 {
    (1u64 << order) - 1
}

impl Ring {
    /// An empty ring for at most `n` indices; `n` must be a power of two.
    pub(super) fn new_empty(n: usize) -> Ring {
        debug_assert!(n.is_power_of_two());
        let order = (2 * n).trailing_zeros();
        let two_n = 2 * n as u64;
        // Entry of cycle 0, safe, empty: older than every position (which start at
        // cycle 1), so the first lap finds every entry free.
        let free = (1u64 << order) | bottom(order);
        Ring {
            head: CachePadded::new(AtomicU64::new(two_n)),
            tail: CachePadded::new(AtomicU64::new(two_n)),
            threshold: CachePadded::new(AtomicI64::new(-1)),
            entries: (0..2 * n).map(|_| AtomicU64::new(free)).collect(),
            order,
        }
    }

    /// A ring for at most `n` indices holding `0..count` in order, as if enqueued
    /// one by one; `n` must be a power of two and `count <= n`.
    pub(super) fn new_full(n: usize, count: usize) -> Ring {
        debug_assert!(count <= n);
        let ring = Ring::new_empty(n);
        let two_n = 2 * n as u64;
        for i in 0..count as u64 {
            let pos = two_n + i;
            let e = ring.encode(ring.cycle(pos), true, i);
            // Ordering: Relaxed; the ring is not shared yet (it is moved into an `Arc`
            // or behind `&` only after construction, which publishes it).
            ring.entries[ring.slot(pos)].store(e, Ordering::Relaxed);
        }
        // Ordering: Relaxed, as above.
        ring.tail.store(two_n + count as u64, Ordering::Relaxed);
        if count > 0 {
            // Ordering: Relaxed, as above.
            ring.threshold.store(ring.reset_value(), Ordering::Relaxed);
        }
        ring
    }

    /// `3n - 1`: enough failed attempts for a dequeuer to reach any index present
    /// when the threshold was last reset (the paper's Lemma 4.3).
    #[inline]
    fn reset_value(&self) -> i64 {
        3 * (self.entries.len() as i64 / 2) - 1
    }

    #[inline]
    fn cycle(&self, pos: u64) -> u64 {
        pos >> self.order
    }

    /// The entry for a position. With 16 or more entries, consecutive positions are
    /// spread `2n / 8` entries apart: over different cache lines (8 entries per
    /// 64-byte line) from 64 entries up, so a producer and a consumer a few positions
    /// apart do not write the same line; with 16 or 32 entries, 2 or 4 entries apart
    /// (four or two consecutive positions share a line).
    #[inline]
    fn slot(&self, pos: u64) -> usize {
        let j = pos & ((1u64 << self.order) - 1);
        if self.order >= 4 {
            (((j & 7) << (self.order - 3)) | (j >> 3)) as usize
        } else {
            j as usize
        }
    }

    #[inline]
    fn encode(&self, cycle: u64, safe: bool, index: u64) -> u64 {
        (cycle << (self.order + 1)) | ((safe as u64) << self.order) | index
    }

    /// `(cycle, safe, index)` of an entry.
    #[inline]
    fn decode(&self, e: u64) -> (u64, bool, u64) {
        (
            e >> (self.order + 1),
            e & (1 << self.order) != 0,
            e & bottom(self.order),
        )
    }

    /// Appends `index` and returns `true`, or returns `false` if the ring is closed
    /// (invariant 8). Never fails otherwise while the ring holds fewer than `n`
    /// indices (invariant 1), and finishes in a bounded number of attempts however
    /// the other threads are scheduled (the paper's Theorem 4.4).
    #[must_use]
    pub(super) fn enqueue(&self, index: u64) -> bool {
        debug_assert!(index < bottom(self.order));
        loop {
            // Ordering: SeqCst. Handing out positions needs only atomicity, but this
            // FAA takes part in the threshold's store-load pairing (invariant 5, see
            // the SeqCst entry CAS below): a dequeuer whose SeqCst fence follows it in
            // the single total order must read a `tail` past `t` when it rechecks.
            // Free on x86 (every RMW is a full barrier there).
            let t = self.tail.fetch_add(1, Ordering::SeqCst);
            if t & CLOSED != 0 {
                // The ring was closed before this position was taken: fail. The
                // position is void; a dequeuer that reaches it skips it (invariant 8).
                return false;
            }
            point("enqueue: took a tail position");
            let cycle_t = self.cycle(t);
            let entry = &self.entries[self.slot(t)];
            // Ordering: Acquire pairs with the Release half of the CAS / fetch_or of
            // the last dequeuer of this entry, so that reading `head` below sees at
            // least that dequeuer's position (invariant 3).
            let mut e = entry.load(Ordering::Acquire);
            point("enqueue: loaded the entry");
            loop {
                let (cycle, safe, idx) = self.decode(e);
                if !(cycle < cycle_t && idx == bottom(self.order)) {
                    break;
                }
                // Ordering: Acquire; see the entry load above. An unsafe entry may be
                // used only if the dequeuer for position `t` has not passed yet.
                if !safe && self.head.load(Ordering::Acquire) > t {
                    break;
                }
                // Ordering: SeqCst on success. Its Release half publishes `index`
                // and, through it, the data slot written before this call
                // (invariant 4): it pairs with the Acquire entry load / fetch_or in
                // `dequeue`. Being SeqCst (with the SeqCst threshold load below) it
                // is also this side of the threshold's store-load pairing with the
                // SeqCst decrement + fence in `dequeue` (invariant 5; the argument
                // is in the module doc). On x86 a SeqCst CAS is the same `lock
                // cmpxchg` as an AcqRel one and a SeqCst load a plain load, which is
                // why this replaces a `fence(SeqCst)` here. Acquire on failure
                // re-reads the entry as above.
                match entry.compare_exchange_weak(
                    e,
                    self.encode(cycle_t, true, index),
                    Ordering::SeqCst,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        point("enqueue: published the index");
                        // loom treats SeqCst read-modify-writes and loads as AcqRel
                        // (it models only SeqCst fences), so under loom the pairing
                        // is spelt with the fence it stands for; the models then
                        // check the store-load argument (a model fails without it).
                        #[cfg(atomkit_loom)]
                        fence(Ordering::SeqCst);
                        let reset = self.reset_value();
                        // Ordering: SeqCst, the load half of the store-load pairing
                        // above: either it sees a dequeuer's decrement to a negative
                        // value (and resets), or that dequeuer's recheck, whose
                        // fence follows this load in the SeqCst order, sees our
                        // position and entry and resets (invariant 5). A weaker load
                        // may read a stale `3n - 1` and skip a reset that a dequeuer
                        // needed, stranding the index (every dequeue says "empty").
                        // Loading first keeps the threshold's line shared in the
                        // common case where it already holds `3n - 1`.
                        if self.threshold.load(Ordering::SeqCst) != reset {
                            point("enqueue: resetting the threshold");
                            // Ordering: Relaxed; the threshold guards no memory (it
                            // only bounds retries), and the load above already made
                            // the store-load argument. A
                            // swap, not a store: a plain store would do, but loom 0.7
                            // may place a plain store before a decrement that this
                            // thread has already read (a coherence violation in the
                            // model), which shows as a stranded index. The swap is
                            // only on this rare path.
                            self.threshold.swap(reset, Ordering::Relaxed);
                        }
                        return true;
                    }
                    Err(actual) => e = actual,
                }
            }
        }
    }

    /// Removes the oldest index, or returns `None` if the ring was empty at some
    /// point during the call. Lock-free: a failed attempt either sees the ring empty
    /// or uses up one unit of the threshold, which only an enqueue, or a recheck that
    /// finds an index waiting, refills.
    pub(super) fn dequeue(&self) -> Option<u64> {
        // Ordering: SeqCst, the load half of the threshold's store-load pairing for a
        // dequeuer that finds it exhausted (see `recheck`): if this reads a decrement
        // that an enqueuer's threshold load preceded, the fence in `recheck` follows
        // that enqueuer's entry CAS in the SeqCst order. A plain load on x86.
        let exhausted = self.threshold.load(Ordering::SeqCst) < 0;
        point("dequeue: read the threshold");
        if self.looks_empty() {
            return None;
        }
        point("dequeue: not seen empty");
        // Exhausted (invariant 5): dequeuers stop taking positions, the bound on
        // their racing past enqueuers, unless an index is published at or past
        // `head`. An exhausted threshold alone is not "empty": an enqueuer may have
        // skipped its reset while dequeuers that had already failed counted their
        // failures, and the thread whose decrement exhausted it may be suspended
        // before its own recheck.
        if exhausted && !self.recheck() {
            return None;
        }
        loop {
            // Ordering: AcqRel; see `enqueue`'s tail FAA. Its position is read back by
            // enqueuers (`head` load) only after they acquired an entry this dequeuer
            // released (invariant 3).
            let h = self.head.fetch_add(1, Ordering::AcqRel);
            point("dequeue: took a head position");
            if let Some(idx) = self.settle(h) {
                return Some(idx);
            }
            point("dequeue: position was void");
            // Ordering: Acquire, so that a tail moved by an enqueue that happened
            // before this call is seen (coherence with its FAA).
            let t = self.tail.load(Ordering::Acquire);
            let empty = t & !CLOSED <= h + 1;
            if empty {
                // Nothing can arrive at a position up to ours any more: empty.
                self.catchup(t, h + 1);
            }
            if self.count_failure() {
                return None;
            }
            if empty {
                return None;
            }
            point("dequeue: retrying");
        }
    }

    /// Settles position `h`, just taken from `head`: consumes the index published
    /// there and returns it, or voids the position (`None`) so that its enqueuer, if
    /// it comes, fails and moves on (invariant 2).
    #[inline]
    fn settle(&self, h: u64) -> Option<u64> {
        let cycle_h = self.cycle(h);
        let entry = &self.entries[self.slot(h)];
        // Ordering: Acquire pairs with the Release CAS in `enqueue` that wrote the
        // index for position `h` (invariant 4).
        let mut e = entry.load(Ordering::Acquire);
        point("dequeue: loaded the entry");
        loop {
            let (cycle, safe, idx) = self.decode(e);
            if cycle == cycle_h {
                // Only the enqueuer of position `h` writes cycle `cycle_h` with an
                // index (invariant 2): it is ours. Consume it by setting the index
                // bits; an OR leaves a concurrent change of the safe bit intact.
                // Ordering: AcqRel; Acquire as for the load above; Release keeps
                // this dequeuer's `head` FAA visible to the next enqueuer of this
                // entry (invariant 3).
                entry.fetch_or(bottom(self.order), Ordering::AcqRel);
                point("dequeue: consumed the entry");
                return Some(idx);
            }
            if cycle >= cycle_h {
                // A later lap already owns the entry: our position is void.
                return None;
            }
            let new = if idx == bottom(self.order) {
                // Empty: advance it to our cycle so that the late enqueuer of
                // position `h` fails and moves on (invariant 2).
                self.encode(cycle_h, safe, idx)
            } else {
                // An index of an earlier lap that its dequeuer has not taken
                // yet: leave it, but mark the entry unsafe (invariant 3).
                self.encode(cycle, false, idx)
            };
            // Ordering: AcqRel; Release so that an enqueuer that later acquires
            // this entry sees our `head` FAA (invariant 3); Acquire on failure to
            // re-read the entry as above.
            match entry.compare_exchange_weak(e, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return None,
                Err(actual) => e = actual,
            }
        }
    }

    /// Closes the ring: every enqueue that takes its position from now on fails
    /// (invariant 8). `true` if this call closed it.
    pub(super) fn close(&self) -> bool {
        // Ordering: AcqRel. Release pairs with the Acquire loads of `tail` in
        // `is_closed` (what the closer did before is visible to whoever sees the ring
        // closed); as a read-modify-write of `tail` it is ordered with every
        // enqueuer's fetch-and-add: each comes before it (and may succeed) or after
        // it (and fails).
        self.tail.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED == 0
    }

    /// Whether [`close`](Ring::close) has been called.
    #[inline]
    pub(super) fn is_closed(&self) -> bool {
        // Ordering: Acquire pairs with the Release half of `close`'s `fetch_or`.
        self.tail.load(Ordering::Acquire) & CLOSED != 0
    }

    /// On a closed ring: removes the oldest index, or returns `None` once no index
    /// is left and none can arrive (invariant 8). Unlike [`dequeue`](Ring::dequeue)
    /// it never reports "empty" while a position below `tail` is unsettled: it
    /// takes that position and settles it, so an enqueuer still on its way there
    /// either has published (and its index is returned here or by another
    /// dequeuer) or fails. Lock-free: every attempt settles one position, and after
    /// the close only failing enqueues add positions, one each.
    pub(super) fn dequeue_closed(&self) -> Option<u64> {
        loop {
            // Ordering: Acquire for both, as in `looks_empty`: the `tail` read is
            // not older than what the `head` read shows.
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Acquire) & !CLOSED;
            debug_assert!(self.is_closed());
            if h >= t {
                // Every position handed to an enqueuer has been handed to a dequeuer,
                // which returns its index or voids it; positions taken later fail.
                return None;
            }
            // Ordering: AcqRel, as in `dequeue`.
            let h = self.head.fetch_add(1, Ordering::AcqRel);
            if let Some(idx) = self.settle(h) {
                return Some(idx);
            }
        }
    }

    /// Uses up one unit of the threshold for a failed dequeue attempt; `true` if
    /// that left it exhausted with no index waiting (the dequeue then reports
    /// "empty", invariant 5).
    #[inline]
    fn count_failure(&self) -> bool {
        // Ordering: SeqCst: the store half of the threshold's store-load pairing on
        // this side (invariant 5): the enqueuer's SeqCst threshold load either reads
        // this decrement or precedes it in the SeqCst order, and then it also
        // precedes the fence in `recheck`. The threshold guards no memory otherwise.
        // Only failed attempts get here.
        let before = self.threshold.fetch_sub(1, Ordering::SeqCst);
        // The threshold is now negative: make sure no index is left behind.
        before <= 0 && !self.recheck()
    }

    /// A failed dequeue attempt's bookkeeping alone ([`count_failure`]), for the
    /// loom model that races threshold exhaustion against an enqueue: in a real
    /// run such failures come from dequeuers racing each other past `tail`, a
    /// schedule too long for loom to reach.
    ///
    /// [`count_failure`]: Ring::count_failure
    #[cfg(atomkit_loom)]
    pub(super) fn model_failed_attempt(&self) -> bool {
        self.count_failure()
    }

    /// The cheap emptiness check a dequeue makes before taking a position: `true`
    /// only if, at the moment the entry for `head` (`h`) was read, it held no index
    /// and no position past `h` had been handed out (`tail <= h + 1`), so every
    /// index in the ring sat at a position already handed to a dequeuer (the ring
    /// was empty for new dequeuers then). It peeks at the entry first: if that holds
    /// the index of `head`'s cycle, the ring is not empty and `tail` is not read
    /// (keeping its line out of the dequeuer's cache on the busy path). Taking a
    /// position on an empty ring instead would void it, send an enqueuer round
    /// again, and write `head`, `tail` and the threshold: that traffic is what this
    /// check saves when consumers poll an empty queue (or producers a full one).
    #[inline]
    fn looks_empty(&self) -> bool {
        // Ordering: Acquire for both. The `tail` read below must not be older than
        // what these two loads saw: if the entry was consumed (AcqRel `fetch_or`)
        // by a thread that pushed before that pop, or `head` was moved (AcqRel FAA)
        // by one that pushed before, those pushes' `tail` FAAs must be visible to
        // the `tail` load, or the check calls a queue empty that never was. These
        // Acquires synchronise with those RMWs and so order the pushes' FAAs before
        // our `tail` load. (With Relaxed loads, loom finds both histories: a pop
        // answering `None` while the queue held a value throughout.) Free on x86.
        let h = self.head.load(Ordering::Acquire);
        let (cycle, _, idx) = self.decode(self.entries[self.slot(h)].load(Ordering::Acquire));
        if cycle == self.cycle(h) && idx != bottom(self.order) {
            return false;
        }
        // Ordering: Acquire, so that a `tail` moved by an enqueue that happened
        // before this call is seen (coherence with its FAA, as in `dequeue`).
        // `tail <= h + 1` means that when the entry was read, every position below
        // `h` had been handed to a dequeuer (`head` only grows), which takes the
        // index published there or voids the position (invariant 2), no position
        // past `h` had been handed to an enqueuer (`tail` only grows), and position
        // `h` held no index: the ring was empty then (invariant 6). An enqueuer
        // that has taken `h` but not yet published is left alone rather than sent
        // round again by a void.
        self.tail.load(Ordering::Acquire) & !CLOSED <= h + 1
    }

    /// Called by a dequeuer that found the threshold exhausted (it read it negative,
    /// or its own decrement made it so): returns whether an index is published at or
    /// past `head`, and if so resets the threshold so that dequeuers take it.
    ///
    /// An enqueuer that published an index may have read the threshold before the
    /// decrement that exhausted it and seen it at `3n - 1` (so it did not reset it):
    /// then this thread must see that index among the positions not yet dequeued.
    /// Every dequeuer that finds the threshold exhausted runs this itself, rather
    /// than leaving it to the one that exhausted it: that one may be suspended
    /// before it gets here, and dequeuers that had voided their positions before an
    /// enqueue can count their failures after it, so an exhausted threshold and an
    /// index waiting at `head` can coexist.
    #[cold]
    fn recheck(&self) -> bool {
        // Ordering: SeqCst fence, the store-load pairing with `enqueue`'s SeqCst
        // tail FAA, entry CAS and threshold load (invariant 5). This thread read or
        // made a decrement D that exhausted the threshold (SeqCst, either way). The
        // enqueuer's load either reads D or later (and the enqueuer resets the
        // threshold itself), or precedes D, hence this fence, in the SeqCst order;
        // then so do its FAA and CAS, and the loads below, sequenced after this
        // fence, see them (or later values): this thread finds the index.
        fence(Ordering::SeqCst);
        point("dequeue: rechecking an exhausted threshold");
        // Ordering: Relaxed for the counter and entry loads: ordered by the fence
        // above. A published index at a position below `head` is not our concern: the
        // dequeuer that took that position finds it (invariant 2).
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed) & !CLOSED;
        let span = tail.saturating_sub(head).min(self.entries.len() as u64);
        let published = (head..head + span).any(|pos| {
            // Ordering: Relaxed, as above.
            let (cycle, _, idx) = self.decode(self.entries[self.slot(pos)].load(Ordering::Relaxed));
            // An index of this position's lap or a later one (a later lap's index
            // sits at a position past this one, so past `head` too).
            cycle >= self.cycle(pos) && idx != bottom(self.order)
        });
        if published {
            // An index waits at or past `head`: keep dequeuers looking. (Resetting on
            // `tail > head` alone would let dequeuers keep voiding the positions of an
            // enqueuer in flight: the livelock the threshold exists to stop.)
            // Ordering: Relaxed; the threshold guards no memory. A swap for the
            // reason given in `enqueue`.
            self.threshold.swap(self.reset_value(), Ordering::Relaxed);
        }
        published
    }

    /// Moves `tail` (read as `tail`, with its [`CLOSED`] bit) forward to `head`
    /// after a dequeuer overtook every enqueuer, so that later enqueuers start past
    /// the positions dequeuers have voided. The bit is kept.
    fn catchup(&self, mut tail: u64, mut head: u64) {
        // Ordering: AcqRel on success, to stay in the release sequence of the tail
        // FAAs; Relaxed on failure, the loads below re-read both counters.
        while self
            .tail
            .compare_exchange_weak(
                tail,
                head | (tail & CLOSED),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            // Ordering: Acquire, as for the other counter loads.
            head = self.head.load(Ordering::Acquire);
            // Ordering: Acquire, as above.
            tail = self.tail.load(Ordering::Acquire);
            if tail & !CLOSED >= head {
                break;
            }
        }
    }

    #[cfg(atomkit_loom)]
    pub(super) fn dump(&self) -> String {
        let o = Ordering::SeqCst;
        format!(
            "head {} tail {} thr {} entries {:?}",
            self.head.load(o),
            self.tail.load(o),
            self.threshold.load(o),
            self.entries
                .iter()
                .map(|e| self.decode(e.load(o)))
                .collect::<Vec<_>>()
        )
    }

    /// Positions handed to enqueuers minus positions handed to dequeuers, read as a
    /// consistent pair; never negative.
    pub(super) fn span(&self) -> u64 {
        loop {
            // Ordering: Acquire for all three loads: a snapshot, no memory guarded;
            // Acquire keeps the re-read of `tail` after the `head` load.
            let tail = self.tail.load(Ordering::Acquire);
            let head = self.head.load(Ordering::Acquire);
            if self.tail.load(Ordering::Acquire) == tail {
                return (tail & !CLOSED).saturating_sub(head);
            }
        }
    }
}
