//! loom models of `WordCounterMap` (unstable): adds, reads, removals, resets and
//! `WordCounter` handles racing growth, which freezes each slot and moves its count to
//! the next table.
//!
//! Run: `RUSTFLAGS="--cfg atomkit_loom --cfg crossbeam_loom --cfg atomkit_unstable" cargo test --release -p atomkit-loom-tests --test loom_word_counter_map`
//! (or `cargo xtask loom`). `LOOM_MAX_PREEMPTIONS` overrides the bounds set here.
//!
//! The map has one shard, tables start at two slots and grow to twice the live keys,
//! and keys hash to themselves, so `K` and `K2` share a probe chain in every table.
//! `grow_shard_of` (a hook for models and tests) grows the shard as an insert would.
//!
//! Under the model checkers one failed CAS promotes a key to a striped cell, and
//! `promote_key` and `has_cell` (hooks too) promote a key and tell whether it is.
//!
//! Each of these changes to `src/counter_map/word.rs`, made one at a time, makes
//! models fail:
//! - the freeze `Relaxed`, or no Acquire fence on the frozen path of `add_in`: an
//!   adder that finds the word frozen loads a null `next` (`Table::next` panics);
//!   no fence on the frozen path of `resolve`: the same for `get`;
//! - the current table loaded `Relaxed`: a causality violation on its slots;
//! - growth storing the moved count instead of adding it: a redirected add is
//!   overwritten (`adds_racing_growth_lose_nothing` and three more);
//! - `get` adding the frozen count whatever `CARRIED` says: a moved count is read
//!   twice (`get_racing_a_move_counts_it_once`, `get_across_two_growths`);
//! - the promotion's CAS `Relaxed`, or no Acquire fence before an add to a cell: a
//!   causality violation on the cell (`a_promotion_publishes_an_initialised_cell`);
//! - `get`, or growth, treating a `CELL` word as a count
//!   (`contended_adds_promote_across_growth` and others);
//! - no Acquire fence after `counter` reads the `CELL` word: a causality violation
//!   on a cell an adder promoted (`a_handle_on_a_cell_promoted_by_an_adder`);
//! - a handle that finds its cell dead re-inserting the key without its add
//!   (`a_handle_racing_remove_keeps_every_count`);
//! - an add through the thread's cache of hot cells taken as done when the cached
//!   cell was dead (`cached_adds_racing_remove_are_returned_or_reinserted`);
//! - an add through a lease that CASes a frozen word (the leased table replaced by
//!   growth): the add is lost with the old table
//!   (`a_leased_add_racing_growth_loses_nothing` and the reset model);
//! - an add through a lease that CASes a tombstone: an add after `remove` or `clear`
//!   is lost (`a_leased_add_racing_remove_is_returned_or_reinserted`,
//!   `an_add_after_clear_never_counts_into_the_leased_table`).
//!
//! Leases (per-thread counted references on tables, through which adds skip the pin)
//! are off in every model but the four named for them, whose extra reference counts
//! would multiply the others' schedules.
//!
//! The add's CAS `Relaxed` (instead of Release) with the freeze `Release` (instead of
//! AcqRel) fails none: see the comment on that CAS.
#![cfg(all(atomkit_loom, atomkit_unstable))]

use atomkit::counter_map::WordCounterMap;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

#[path = "../../tests/support/identity_hash.rs"]
mod identity_hash;
use identity_hash::Identity;

type Map = WordCounterMap<u64, Identity>;

/// Two keys whose home slot is the same in tables of 2, 4 and 8 slots.
const K: u64 = 1;
const K2: u64 = 9;

/// A map of one shard, two slots, where `K` has a count of 1.
fn map() -> Arc<Map> {
    let m = WordCounterMap::builder().shards(1).hasher(Identity).build();
    m.inc(K);
    Arc::new(m)
}

/// `map()` with per-thread table leases on (the other models run without them): a
/// thread's first add to a listed key leases the table, and its next adds count
/// through the lease, without a pin.
fn leased_map() -> Arc<Map> {
    let mut m = WordCounterMap::builder().shards(1).hasher(Identity).build();
    m.set_leases(true);
    m.inc(K);
    Arc::new(m)
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

/// Two adds racing a growth: both land, once each, whether before the freeze (moved)
/// or after it (redirected to the next table).
#[test]
fn adds_racing_growth_lose_nothing() {
    model(2, || {
        let m = map();
        let a = spawn(&m, |m| {
            m.inc(K);
            m.inc(K);
        });
        m.grow_shard_of(K);
        a.join().unwrap();
        assert_eq!(m.get(K), 3);
        assert_eq!(m.len(), 1);
    });
}

/// A key inserted while another thread adds to a colliding key: the insert grows the
/// table first (two keys would fill two slots), and neither count is lost.
#[test]
fn a_new_key_racing_growth_keeps_its_count() {
    model(2, || {
        let m = map();
        let a = spawn(&m, |m| m.inc(K));
        m.inc(K2);
        a.join().unwrap();
        assert_eq!(m.get(K), 2);
        assert_eq!(m.get(K2), 1);
        assert_eq!(m.len(), 2);
    });
}

/// `get` (on this thread) racing another thread's add of 1 to `K` (count 1 before)
/// and then `growths` growths in a row: it sees 1 or 2, never a moved count twice.
/// (Adds racing the freeze itself are the first model's.)
fn get_racing_growths(growths: usize) {
    let m = map();
    let g = spawn(&m, move |m| {
        m.inc(K);
        (0..growths).for_each(|_| m.grow_shard_of(K));
    });
    let seen = m.get(K);
    assert!(seen == 1 || seen == 2, "saw {seen}");
    g.join().unwrap();
    assert_eq!(m.get(K), 2);
}

/// `get` racing an add and the move of the key's count: never the moved count twice.
#[test]
fn get_racing_a_move_counts_it_once() {
    model(2, || get_racing_growths(1));
}

/// Two growths in a row while a `get` may still be on the first table: the rule holds
/// at each step of the chain.
#[test]
fn get_across_two_growths() {
    model(2, || get_racing_growths(2));
}

/// An add racing a growth and then `remove` on this thread: the add is in the count
/// `remove` returns, or on the key inserted anew; never lost, never both.
#[test]
fn an_add_racing_remove_is_returned_or_reinserted() {
    model(2, || {
        let m = map();
        let a = spawn(&m, |m| m.inc(K));
        m.grow_shard_of(K);
        let removed = m.remove(K).expect("K was listed");
        a.join().unwrap();
        assert!(removed == 1 || removed == 2, "removed {removed}");
        assert_eq!(removed + m.get(K), 2);
        assert_eq!(m.len(), usize::from(removed == 1));
    });
}

/// An add racing a growth and then `snapshot_and_reset` on this thread: the add is
/// reported by this reset or left for the next, exactly once.
#[test]
fn an_add_racing_a_reset_is_reported_once() {
    model(2, || {
        let m = map();
        let a = spawn(&m, |m| m.inc(K));
        m.grow_shard_of(K);
        let first = m.snapshot_and_reset()[&K];
        a.join().unwrap();
        let second = m.snapshot_and_reset()[&K];
        assert!(first == 1 || first == 2, "first {first}");
        assert_eq!(first + second, 2);
    });
}

/// Set when an execution of `contended_adds_promote_across_growth` ended with `K` in a
/// cell: the model must reach promotion, not just pass.
static PROMOTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Two adders colliding on `K` (one failed CAS promotes it to a striped cell under the
/// model checkers) while this thread also grows the table: every count is kept,
/// whether it landed in the word, the cell, or the next table.
#[test]
fn contended_adds_promote_across_growth() {
    model(2, || {
        let m = map();
        let a = spawn(&m, |m| m.inc(K));
        m.inc(K);
        m.grow_shard_of(K);
        a.join().unwrap();
        assert_eq!(m.get(K), 3);
        if m.has_cell(K) {
            PROMOTED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    assert!(
        PROMOTED.load(std::sync::atomic::Ordering::Relaxed),
        "no execution promoted the key"
    );
}

/// A map where `K` (count 1) already lives in a cell.
fn striped_map() -> Arc<Map> {
    let m = map();
    m.promote_key(K);
    assert!(m.has_cell(K));
    m
}

/// An add to a striped key racing a growth (which moves the cell) and then `remove`
/// (which kills it): in the count returned, or on the key inserted anew.
#[test]
fn an_add_to_a_cell_racing_growth_and_remove() {
    model(2, || {
        let m = striped_map();
        let a = spawn(&m, |m| m.inc(K));
        m.grow_shard_of(K);
        let removed = m.remove(K).expect("K was listed");
        a.join().unwrap();
        assert!(removed == 1 || removed == 2, "removed {removed}");
        assert_eq!(removed + m.get(K), 2);
    });
}

/// `get` of a striped key racing an add and a growth that moves the cell: the cell is
/// the key's home in both tables, counted once.
#[test]
fn get_of_a_cell_racing_growth() {
    model(2, || {
        let m = striped_map();
        let g = spawn(&m, |m| {
            m.inc(K);
            m.grow_shard_of(K);
        });
        let seen = m.get(K);
        assert!(seen == 1 || seen == 2, "saw {seen}");
        g.join().unwrap();
        assert_eq!(m.get(K), 2);
        assert_eq!(m.snapshot_and_reset()[&K], 2);
    });
}

/// `get` and an add racing the promotion of `K` (count 1) to a cell: the cell is
/// published initialised, so `get` sees 1 or 2 and the add lands once.
#[test]
fn a_promotion_publishes_an_initialised_cell() {
    model(2, || {
        let m = map();
        let p = spawn(&m, |m| m.promote_key(K));
        m.inc(K);
        let seen = m.get(K);
        p.join().unwrap();
        assert_eq!(seen, 2);
        assert_eq!(m.get(K), 2);
    });
}

/// A handle's adds racing `remove`: each is in the count `remove` returns, or on the
/// key the handle inserted anew (in a new cell) after finding its cell dead.
#[test]
fn a_handle_racing_remove_keeps_every_count() {
    model(2, || {
        let m = map();
        let a = spawn(&m, |m| {
            let c = m.counter(K);
            c.inc();
            c.inc();
        });
        let removed = m.remove(K).unwrap_or(0);
        a.join().unwrap();
        let left = m.get(K);
        assert_eq!(removed + left, 3, "removed {removed}, left {left}");
        assert_eq!(
            m.len(),
            usize::from(left > 0 || m.snapshot().contains_key(&K))
        );
    });
}

/// A handle's add racing growth and a reset: the cell moves with the key, so the add
/// is reported by the reset or left in the count, once.
#[test]
fn a_handle_racing_growth_and_a_reset_is_counted_once() {
    model(2, || {
        let m = map();
        let a = spawn(&m, |m| m.counter(K).inc());
        m.grow_shard_of(K);
        let reset = m.snapshot_and_reset().get(&K).copied().unwrap_or(0);
        a.join().unwrap();
        assert_eq!(reset + m.get(K), 2);
    });
}

/// `counter` meeting a cell that a colliding adder promoted without the lock: the
/// handle must see the cell initialised (the fence after reading the `CELL` word).
#[test]
fn a_handle_on_a_cell_promoted_by_an_adder() {
    model(2, || {
        let m = map();
        let a = spawn(&m, |m| m.inc(K));
        m.inc(K);
        let c = m.counter(K);
        c.inc();
        a.join().unwrap();
        assert_eq!(c.get(), 4);
        drop(c);
        assert_eq!(m.get(K), 4);
    });
}

/// Adds to a striped key through the thread's cache of hot cells (the first add
/// caches the cell, the second counts through the cache, without a pin) racing
/// `remove`, which kills the cell: each add is in the count returned, or, finding
/// the cached cell dead, goes down the pinned path and inserts the key anew.
#[test]
fn cached_adds_racing_remove_are_returned_or_reinserted() {
    model(2, || {
        let m = striped_map();
        let a = spawn(&m, |m| {
            m.inc(K);
            m.inc(K);
        });
        let removed = m.remove(K).expect("K was listed");
        a.join().unwrap();
        assert_eq!(removed + m.get(K), 3, "removed {removed}");
    });
}

/// Adds through a lease racing a growth: this thread's first add leases the table
/// current then, its second counts through the lease. One that finds its leased table
/// frozen counts on the pinned path and leases the new table; none is lost, none is
/// counted twice.
#[test]
fn a_leased_add_racing_growth_loses_nothing() {
    model(1, || {
        let m = leased_map();
        m.inc(K);
        let g = spawn(&m, |m| m.grow_shard_of(K));
        m.inc(K);
        g.join().unwrap();
        assert_eq!(m.get(K), 3);
    });
}

/// A leased add racing `remove`: in the count returned, or, finding the leased word a
/// tombstone, on the key inserted anew. (The flag says when the add surely followed
/// the removal; it also leads the model to schedules where it does.)
#[test]
fn a_leased_add_racing_remove_is_returned_or_reinserted() {
    model(1, || {
        let m = leased_map();
        m.inc(K);
        let removed_flag = Arc::new(AtomicBool::new(false));
        let done = Arc::clone(&removed_flag);
        let r = spawn(&m, move |m| {
            let removed = m.remove(K).expect("K was listed");
            done.store(true, Ordering::SeqCst);
            removed
        });
        let after_remove = removed_flag.load(Ordering::SeqCst);
        m.inc(K);
        let removed = r.join().unwrap();
        let end = m.get(K);
        assert_eq!(removed + end, 3, "removed {removed}");
        assert!(end == 1 || !after_remove, "an add after remove was lost");
    });
}

/// A leased add racing a growth and then `snapshot_and_reset`: reported by exactly
/// one of two resets.
#[test]
fn a_leased_add_racing_growth_and_a_reset_is_reported_once() {
    model(1, || {
        let m = leased_map();
        m.inc(K);
        let r = spawn(&m, |m| {
            m.grow_shard_of(K);
            m.snapshot_and_reset()[&K]
        });
        m.inc(K);
        let first = r.join().unwrap();
        let second = m.snapshot_and_reset()[&K];
        assert_eq!(first + second, 3, "first {first}");
    });
}

/// A leased add racing `clear`: one that starts after `clear` returned lands on the
/// key inserted anew, never in the leased table the clear left (whose words are
/// tombstones); one before it goes with it.
#[test]
fn an_add_after_clear_never_counts_into_the_leased_table() {
    model(1, || {
        let m = leased_map();
        m.inc(K);
        let cleared = Arc::new(AtomicBool::new(false));
        let done = Arc::clone(&cleared);
        let c = spawn(&m, move |m| {
            m.clear();
            done.store(true, Ordering::SeqCst);
        });
        let after_clear = cleared.load(Ordering::SeqCst);
        m.inc(K);
        c.join().unwrap();
        let end = m.get(K);
        assert!(end <= 1, "end {end}");
        assert!(end == 1 || !after_clear, "an add after clear was lost");
    });
}
