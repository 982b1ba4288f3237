//! loom models of the growth protocol proposed for the counter map's next core
//! (`docs/design/counter_map_core.md`, "Orderings"): counts in the slots, adds by CAS,
//! growth that freezes each slot and moves its count into the next table with
//! `CARRIED`, and the `get` rule that reads the next table's word once.
//!
//! The models check the protocol on the small implementation in this file, which the
//! library does not use yet; they are the evidence the design cites, and the starting
//! point for the models of the real core. Simplifications: one grower (growth runs
//! under a lock in the design), new keys claimed lock-free (the design claims them
//! under the lock: a superset of its races), tables freed after the threads join
//! instead of through the epoch, and no removal, cells or resets.
//!
//! Run: `RUSTFLAGS="--cfg atomkit_loom --cfg crossbeam_loom" cargo test --release -p atomkit-loom-tests --test loom_counter_map_core_proposal`
//! (or `cargo xtask loom`). `LOOM_MAX_PREEMPTIONS` overrides the bounds set here.
//!
//! Each of these changes, made one at a time, makes models fail:
//! - the add's CAS `Relaxed` on success: growth reads the add but not the key's claim
//!   and drops the count (`a_new_key_racing_growth_keeps_its_count`);
//! - the freeze `Acquire` only, or no Acquire fence in `add` before it follows
//!   `next`: an adder that finds the word frozen loads a null `next` (every model);
//! - growth storing the moved count instead of adding it: a redirected add is
//!   overwritten (every model);
//! - `get` adding the frozen count whatever `CARRIED` says: a moved count is read
//!   twice (`get_racing_a_move_counts_it_once`, `get_across_two_growths`).
#![cfg(atomkit_loom)]

use loom::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

/// Growth has claimed the slot; its word never changes again.
const FROZEN: u64 = 1 << 62;
/// This count includes the one growth moved here from the previous table.
const CARRIED: u64 = 1 << 61;
/// The count bits.
const COUNT: u64 = CARRIED - 1;
/// A free slot's key word.
const EMPTY: u64 = 0;

/// Two keys whose home slot is the same in tables of 2, 4 and 8 slots.
const K: u64 = 1;
const K2: u64 = 9;

/// A power-of-two array of (key, word) slots, probed linearly from `key & mask`.
struct Table {
    slots: Vec<[AtomicU64; 2]>,
    /// The table growth moves this one's keys to; set before any slot is frozen.
    next: AtomicPtr<Table>,
}

impl Table {
    fn new(len: usize) -> Box<Table> {
        Box::new(Table {
            slots: (0..len)
                .map(|_| [AtomicU64::new(EMPTY), AtomicU64::new(0)])
                .collect(),
            next: AtomicPtr::new(std::ptr::null_mut()),
        })
    }

    /// `k`'s count word, or `None` if the probe reaches a free slot first.
    fn find(&self, k: u64) -> Option<&AtomicU64> {
        let mask = self.slots.len() - 1;
        (0..self.slots.len())
            .find_map(|j| {
                let [key, word] = &self.slots[(k as usize + j) & mask];
                // Ordering: Relaxed: a key word publishes nothing but itself.
                match key.load(Ordering::Relaxed) {
                    cur if cur == k => Some(Some(word)),
                    EMPTY => Some(None),
                    _ => None,
                }
            })
            .flatten()
    }

    /// `k`'s count word, claiming a free slot for `k` if it has none. The models never
    /// fill a table.
    fn find_or_claim(&self, k: u64) -> &AtomicU64 {
        let mask = self.slots.len() - 1;
        for j in 0..self.slots.len() {
            let [key, word] = &self.slots[(k as usize + j) & mask];
            // Ordering: Relaxed: the claim publishes only the key word; the add that
            // follows publishes the claim to growth (Release CAS in `add`).
            match key.compare_exchange(EMPTY, k, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return word,
                Err(cur) if cur == k => return word,
                Err(_) => {}
            }
        }
        unreachable!("the models never fill a table")
    }
}

/// The table growth is moving `t`'s keys to, for a thread that found a frozen word
/// in `t` and then fenced Acquire.
fn next_of(t: &Table) -> &Table {
    // Ordering: Relaxed: ordered by the caller's fence, with the frozen value it read,
    // after the freeze's Release, which follows the store of `next`.
    let next = t.next.load(Ordering::Relaxed);
    assert!(!next.is_null(), "a frozen word, but no next table in sight");
    // SAFETY: non-null: a table growth allocated; freed only after the joins.
    unsafe { &*next }
}

/// Adds `n` to a word's count bits, keeping its flags.
fn bump(w: u64, n: u64) -> u64 {
    (w & !COUNT) | (w.wrapping_add(n) & COUNT)
}

/// A shard with its current table.
struct Map {
    current: AtomicPtr<Table>,
}

impl Map {
    /// A map of two slots where `K` has a count of 1.
    fn new() -> Arc<Map> {
        let t = Table::new(2);
        t.find_or_claim(K).store(1, Ordering::Relaxed);
        Arc::new(Map {
            current: AtomicPtr::new(Box::into_raw(t)),
        })
    }

    fn current(&self) -> &Table {
        // Ordering: Acquire pairs with the Release store in `grow`, so a new table's
        // moved slots are visible.
        // SAFETY: tables are freed only after every thread of the model has joined.
        unsafe { &*self.current.load(Ordering::Acquire) }
    }

    /// Adds `n` to `k`'s count.
    fn add(&self, k: u64, n: u64) {
        let mut t = self.current();
        'table: loop {
            let w = t.find_or_claim(k);
            // Ordering: Relaxed: a count publishes nothing; a frozen value is followed
            // by the Acquire fence below.
            let mut cur = w.load(Ordering::Relaxed);
            loop {
                if cur & FROZEN != 0 {
                    // Ordering: with the frozen value read above, pairs with the
                    // freeze's Release, so `next` (stored before it) is visible.
                    fence(Ordering::Acquire);
                    t = next_of(t);
                    continue 'table;
                }
                // Ordering: Release on success: growth's freeze, which reads this add
                // (Acquire), then also sees the key's claim, so it moves the count.
                // Relaxed on failure: the loop re-reads.
                match w.compare_exchange(cur, bump(cur, n), Ordering::Release, Ordering::Relaxed) {
                    Ok(_) => return,
                    Err(actual) => cur = actual,
                }
            }
        }
    }

    /// Moves every key to a table twice the size, as the one grower. Returns the old
    /// table, for the caller to free once every thread has joined.
    fn grow(&self) -> Box<Table> {
        // Ordering: Relaxed: this thread is the only one that stores `current`.
        let old = self.current.load(Ordering::Relaxed);
        // SAFETY: the current table is live; only this thread replaces it.
        let t = unsafe { &*old };
        let next = Box::into_raw(Table::new(t.slots.len() * 2));
        // Ordering: Relaxed: published to adders by each freeze's Release below.
        t.next.store(next, Ordering::Relaxed);
        // SAFETY: just allocated; freed by the model after the joins.
        let n = unsafe { &*next };
        for [key, word] in &t.slots {
            // Ordering: AcqRel. Acquire: an add this freeze reads was a Release CAS,
            // so the key's claim is visible to the load below. Release: an adder that
            // reads the frozen word (and fences Acquire) sees `next`.
            let c = word.fetch_or(FROZEN, Ordering::AcqRel);
            // Ordering: Relaxed: ordered by the Acquire above for every claim whose
            // add was counted; a claim it misses has no count to move.
            let k = key.load(Ordering::Relaxed);
            if k == EMPTY {
                continue;
            }
            let w = n.find_or_claim(k);
            // Ordering: Relaxed, as in `add`.
            let mut cur = w.load(Ordering::Relaxed);
            // Ordering: Release, as for the adds: a later growth's freeze reads it.
            while let Err(actual) = w.compare_exchange(
                cur,
                bump(cur, c & COUNT) | CARRIED,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                cur = actual;
            }
        }
        // Ordering: Release pairs with the Acquire load in `current`.
        self.current.store(next, Ordering::Release);
        // SAFETY: `old` came from `Box::into_raw`; adders still on it are threads of
        // the model, which the caller joins before dropping it.
        unsafe { Box::from_raw(old) }
    }

    /// `k`'s count, by the design's rule: a frozen word's count is added unless the
    /// key's word in the next table, read once, says it arrived there (`CARRIED`).
    fn get(&self, k: u64) -> u64 {
        let mut t = self.current();
        // Ordering: Relaxed: a count publishes nothing; see `add` for frozen words.
        let mut v = t.find(k).map_or(0, |w| w.load(Ordering::Relaxed));
        let mut total = 0;
        while v & FROZEN != 0 {
            // Ordering: as in `add`.
            fence(Ordering::Acquire);
            t = next_of(t);
            // Ordering: Relaxed: one read decides both whether the frozen count
            // arrived and what this table holds.
            let next = t.find(k).map_or(0, |w| w.load(Ordering::Relaxed));
            if next & CARRIED == 0 {
                total += v & COUNT;
            }
            v = next;
        }
        total + (v & COUNT)
    }

    /// Frees the current table.
    fn free(&self) {
        // Ordering: Relaxed: every thread of the model has joined.
        // SAFETY: as above; each table is freed once.
        drop(unsafe { Box::from_raw(self.current.load(Ordering::Relaxed)) });
    }
}

fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    atomkit_loom_tests::loom_model(bound, f);
}

/// Runs `f` on the map in a new thread.
fn spawn<T: Send + 'static>(
    m: &Arc<Map>,
    f: impl FnOnce(&Map) -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let m = Arc::clone(m);
    thread::spawn(move || f(&m))
}

/// Frees the map's tables: `retired` (returned by `grow`) and the current one. Call
/// after every thread of the model has joined.
fn free(m: &Map, retired: impl IntoIterator<Item = Box<Table>>) {
    retired.into_iter().for_each(drop);
    m.free();
}

/// Two adds racing a growth: both land, once each, whether before the freeze (moved)
/// or after it (redirected).
#[test]
fn adds_racing_growth_lose_nothing() {
    model(3, || {
        let m = Map::new();
        let a = spawn(&m, |m| {
            m.add(K, 1);
            m.add(K, 1);
        });
        let old = m.grow();
        a.join().unwrap();
        assert_eq!(m.get(K), 3);
        free(&m, [old]);
    });
}

/// A key first seen during a growth, colliding with a key growth moves: neither
/// count is lost.
#[test]
fn a_new_key_racing_growth_keeps_its_count() {
    model(3, || {
        let m = Map::new();
        let a = spawn(&m, |m| m.add(K, 1));
        let b = spawn(&m, |m| m.add(K2, 1));
        let old = m.grow();
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(m.get(K), 2);
        assert_eq!(m.get(K2), 1);
        free(&m, [old]);
    });
}

/// `get` (on this thread) racing an add of 1 to `K` (count 1 before) and `growths`
/// growths in a row on another thread: it sees 1 or 2, never a moved count twice.
fn get_racing_growths(growths: usize) {
    let m = Map::new();
    let a = spawn(&m, |m| m.add(K, 1));
    let g = spawn(&m, move |m| {
        (0..growths).map(|_| m.grow()).collect::<Vec<_>>()
    });
    let seen = m.get(K);
    assert!(seen == 1 || seen == 2, "saw {seen}");
    a.join().unwrap();
    let retired = g.join().unwrap();
    assert_eq!(m.get(K), 2);
    free(&m, retired);
}

/// `get` racing an add and the move of the key's count: never the moved count twice.
#[test]
fn get_racing_a_move_counts_it_once() {
    model(3, || get_racing_growths(1));
}

/// Two growths in a row while a `get` may still be on the first table: the rule holds
/// at each step of the chain.
#[test]
fn get_across_two_growths() {
    model(2, || get_racing_growths(2));
}
