//! loom models of `WordCounterMap` (unstable): adds, reads, removals and resets
//! racing growth, which freezes each slot and moves its count to the next table.
//!
//! Run: `RUSTFLAGS="--cfg atomkit_loom --cfg crossbeam_loom --cfg atomkit_unstable" cargo test --release -p atomkit-loom-tests --test loom_word_counter_map`
//! (or `cargo xtask loom`). `LOOM_MAX_PREEMPTIONS` overrides the bounds set here.
//!
//! The map has one shard, tables start at two slots and grow to twice the live keys,
//! and keys hash to themselves, so `K` and `K2` share a probe chain in every table.
//! `grow_shard_of` (a hook for models and tests) grows the shard as an insert would.
//!
//! Each of these changes to `src/counter_map/word.rs`, made one at a time, makes
//! models fail:
//! - the add's CAS `Relaxed` on success: growth reads the add but not the claim of
//!   the key's slot, and drops the count (`a_new_key_racing_growth_keeps_its_count`);
//! - the freeze `Acquire` only, or no Acquire fence on the frozen path of `add_in`:
//!   an adder that finds the word frozen loads a null `next` (a crash in `Table::next`)
//!   (`adds_racing_growth_lose_nothing`);
//! - growth storing the moved count instead of adding it: a redirected add is
//!   overwritten (`adds_racing_growth_lose_nothing`);
//! - `get` adding the frozen count whatever `CARRIED` says: a moved count is read
//!   twice (`get_racing_a_move_counts_it_once`, `get_across_two_growths`).
#![cfg(all(atomkit_loom, atomkit_unstable))]

use atomkit::counter_map::WordCounterMap;
use loom::sync::Arc;
use loom::thread;
use std::hash::{BuildHasher, Hasher};

/// Hashes a word to itself.
#[derive(Clone, Default)]
struct Identity;

struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("word keys hash as one u64")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl BuildHasher for Identity {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

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
