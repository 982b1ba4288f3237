//! shuttle tests of `WordCounterMap` (unstable): random and PCT schedules of bigger
//! scenarios than loom can explore: many keys with growth, resets, removals and
//! `clear` together, and reads racing growth.
//!
//! Run: `RUSTFLAGS="--cfg atomkit_shuttle --cfg atomkit_unstable" SHUTTLE_SILENCE_WARNINGS=1 cargo test --release -p atomkit-loom-tests --test shuttle_word_counter_map`
//!
//! shuttle treats every atomic as SeqCst, so these find logic races (lost or double
//! counts, wrong slow paths); loom covers weak memory.
#![cfg(all(atomkit_shuttle, atomkit_unstable))]

use atomkit::counter_map::WordCounterMap;
use atomkit_loom_tests::shuttle_iters;
use shuttle::sync::Arc;
use shuttle::thread;
use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

type Map = WordCounterMap<u64, BuildHasherDefault<DefaultHasher>>;

fn map(shards: usize) -> Arc<Map> {
    Arc::new(
        WordCounterMap::builder()
            .shards(shards)
            .hasher(BuildHasherDefault::<DefaultHasher>::default())
            .build(),
    )
}

/// Iterations per scheduler (`cargo xtask shuttle --long` raises it).
fn iters() -> usize {
    shuttle_iters(3_000)
}

/// Two writers over ten keys (growing the tables from two slots), a resetter and a
/// remover: every increment is reported exactly once, by a reset, a remove, or the
/// final count.
fn many_keys_growth_resets_removes() {
    let m = map(2);
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                for i in 0..12u64 {
                    m.add((i * 7 + t) % 10, 1 + t);
                }
            })
        })
        .collect();
    let resetter = {
        let m = Arc::clone(&m);
        thread::spawn(move || {
            (0..3)
                .map(|_| {
                    let seen = m.snapshot_and_reset().values().sum::<u64>();
                    thread::yield_now();
                    seen
                })
                .sum::<u64>()
        })
    };
    let taken: u64 = [0u64, 3, 7, 0]
        .iter()
        .map(|&k| {
            let taken = m.remove(k).unwrap_or(0);
            thread::yield_now();
            taken
        })
        .sum();
    for w in writers {
        w.join().unwrap();
    }
    let seen = resetter.join().unwrap();
    let left: u64 = m.snapshot().values().sum();
    assert_eq!(seen + taken + left, 12 + 12 * 2); // thread 0 adds 1, thread 1 adds 2
    assert_eq!(m.len(), m.snapshot().len());
}

#[test]
fn random_many_keys_growth_resets_removes() {
    shuttle::check_random(many_keys_growth_resets_removes, iters());
}

#[test]
fn pct_many_keys_growth_resets_removes() {
    shuttle::check_pct(many_keys_growth_resets_removes, iters(), 3);
}

/// Adds to one key while another thread inserts keys (growth after growth): a reader's
/// successive `get`s of the key never go down and never pass the adds issued.
fn reads_racing_growth() {
    let m = map(1);
    let adder = {
        let m = Arc::clone(&m);
        thread::spawn(move || (0..6).for_each(|_| m.inc(1)))
    };
    let inserter = {
        let m = Arc::clone(&m);
        thread::spawn(move || (2..10u64).for_each(|k| m.inc(k)))
    };
    let mut last = 0;
    for _ in 0..6 {
        let c = m.get(1);
        assert!(last <= c && c <= 6, "{c} after {last}");
        last = c;
        thread::yield_now();
    }
    adder.join().unwrap();
    inserter.join().unwrap();
    assert_eq!(m.get(1), 6);
    assert_eq!(m.len(), 9);
}

#[test]
fn random_reads_racing_growth() {
    shuttle::check_random(reads_racing_growth, iters());
}

#[test]
fn pct_reads_racing_growth() {
    shuttle::check_pct(reads_racing_growth, iters(), 3);
}

/// An increment, a reset and a remove racing on one key, with growth from a second
/// key: each increment is reported once.
fn increment_reset_remove_three_way() {
    let m = map(1);
    m.inc(5);
    let inc = {
        let m = Arc::clone(&m);
        thread::spawn(move || {
            m.inc(5);
            m.inc(6);
            m.inc(5);
        })
    };
    let reset = {
        let m = Arc::clone(&m);
        thread::spawn(move || m.snapshot_and_reset().get(&5).copied().unwrap_or(0))
    };
    let removed = m.remove(5).unwrap_or(0);
    inc.join().unwrap();
    let reset = reset.join().unwrap();
    assert_eq!(removed + reset + m.get(5), 3);
}

#[test]
fn random_increment_reset_remove_three_way() {
    shuttle::check_random(increment_reset_remove_three_way, iters());
}

#[test]
fn pct_increment_reset_remove_three_way() {
    shuttle::check_pct(increment_reset_remove_three_way, iters(), 3);
}

/// Adds racing `clear`: each add is discarded by it or counted after it, never both,
/// and the key count matches the keys listed.
fn adds_racing_clear() {
    let m = map(1);
    m.inc(1);
    let adder = {
        let m = Arc::clone(&m);
        thread::spawn(move || (0..3u64).for_each(|k| m.inc(k % 2 + 1)))
    };
    m.clear();
    adder.join().unwrap();
    let snap = m.snapshot();
    assert!(snap.values().sum::<u64>() <= 3, "{snap:?}");
    assert_eq!(m.len(), snap.len());
}

#[test]
fn random_adds_racing_clear() {
    shuttle::check_random(adds_racing_clear, iters());
}

/// Handles on two keys from two threads, with a third key's inserts growing the table,
/// racing removals of the handles' keys and resets: every increment is reported once,
/// by a reset, a removal or the final count, whichever cell it landed in.
fn handles_racing_removal_growth_and_resets() {
    let m = map(1);
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let c = m.counter(t);
                let d = c.clone();
                for i in 0..6u64 {
                    if i % 2 == 0 {
                        c.inc();
                    } else {
                        d.add(2);
                    }
                    m.inc(10 + i + 6 * t);
                }
            })
        })
        .collect();
    let mut reported = 0;
    for i in 0..4u64 {
        reported += if i % 2 == 0 {
            m.remove(i / 2).unwrap_or(0)
        } else {
            m.snapshot_and_reset().values().sum()
        };
        thread::yield_now();
    }
    for w in writers {
        w.join().unwrap();
    }
    let left: u64 = m.snapshot().values().sum();
    assert_eq!(reported + left, 2 * (3 + 3 * 2 + 6));
    assert_eq!(m.len(), m.snapshot().len());
}

#[test]
fn random_handles_racing_removal_growth_and_resets() {
    shuttle::check_random(handles_racing_removal_growth_and_resets, iters());
}

#[test]
fn pct_handles_racing_removal_growth_and_resets() {
    shuttle::check_pct(handles_racing_removal_growth_and_resets, iters(), 3);
}
