//! loom models of `CounterMap`: every interleaving of small scenarios.
//!
//! Run: `RUSTFLAGS="--cfg atomkit_loom --cfg crossbeam_loom" cargo test --release -p atomkit-loom-tests --test loom_counter_map`
//! (or `cargo xtask loom`). `LOOM_MAX_PREEMPTIONS` overrides the bound set here.
//!
//! The keys are of no word type, so the map keeps them in entries (its word-key core
//! has its own models, `loom_word_counter_map`). Under loom the map uses its own epoch
//! collector and starts each shard with a table of two slots, so that the second key
//! inserted into a shard grows the table.
#![cfg(atomkit_loom)]

use atomkit::counter_map::CounterMap;
use loom::sync::Arc;
use loom::thread;
use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

type Map = CounterMap<Key, BuildHasherDefault<DefaultHasher>>;

/// A key of no word type, so that the map keeps it in an entry (the core these models
/// are about: the word-key core has its own, `loom_word_counter_map`). It hashes as
/// the `u64` it holds.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Key(u64);

/// One shard, a fixed hasher (every execution probes the same slots).
fn map() -> Arc<Map> {
    Arc::new(
        CounterMap::builder()
            .shards(1)
            .hasher(BuildHasherDefault::<DefaultHasher>::default())
            .build(),
    )
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    atomkit_loom_tests::loom_model(2, f);
}

/// Two threads insert the same new key: one entry, both counts kept.
#[test]
fn two_threads_insert_one_new_key() {
    model(|| {
        let m = map();
        let t = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.inc(&Key(7)))
        };
        m.add(&Key(7), 2);
        // Read it back on this thread while the other may still be inserting: the
        // probe must see a fully published entry (or none).
        let seen = m.get(&Key(7));
        assert!(seen == 2 || seen == 3, "saw {seen}");
        t.join().unwrap();
        assert_eq!(m.get(&Key(7)), 3);
        assert_eq!(m.len(), 1);
    });
}

/// A new key inserted by one thread and looked up lock-free by another: the reader
/// sees the published entry's key (loom checks the key cell's causality).
#[test]
fn insert_publishes_entry_to_lock_free_reader() {
    model(|| {
        let m = map();
        let t = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.inc(&Key(1)))
        };
        let seen = m.get(&Key(1));
        assert!(seen <= 1);
        t.join().unwrap();
        assert_eq!(m.get(&Key(1)), 1);
    });
}

/// An increment racing `snapshot_and_reset`: reported by exactly one of the two resets.
#[test]
fn increment_racing_snapshot_and_reset() {
    model(|| {
        let m = map();
        m.inc(&Key(3)); // present: the racing increment takes the lock-free path
        let t = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.inc(&Key(3)))
        };
        let first = m.snapshot_and_reset().get(&Key(3)).copied().unwrap_or(0);
        t.join().unwrap();
        let second = m.snapshot_and_reset().get(&Key(3)).copied().unwrap_or(0);
        assert!(
            first >= 1,
            "the increment before the race is in the first reset"
        );
        assert_eq!(first + second, 2, "no increment lost or counted twice");
    });
}

/// An increment racing `remove` of its key. Documented outcome: the increment is in
/// the count `remove` returns, or it re-inserts the key. Never lost.
#[test]
fn increment_racing_remove() {
    model(|| {
        let m = map();
        m.inc(&Key(5));
        let t = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.inc(&Key(5)))
        };
        let removed = m.remove(&Key(5)).expect("the key was present");
        t.join().unwrap();
        let left = m.get(&Key(5));
        assert!(removed == 1 || removed == 2);
        assert_eq!(removed + left, 2, "removed {removed}, left {left}");
        assert_eq!(m.len(), usize::from(left > 0));
    });
}

/// An increment racing `remove` and then a reset of the re-inserted key.
#[test]
fn increment_racing_remove_then_reset() {
    model(|| {
        let m = map();
        m.inc(&Key(5));
        let t = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                m.inc(&Key(5));
                m.snapshot_and_reset().get(&Key(5)).copied().unwrap_or(0)
            })
        };
        let removed = m.remove(&Key(5)).unwrap_or(0);
        let reset = t.join().unwrap();
        let left = m.get(&Key(5));
        assert_eq!(removed + reset + left, 2);
    });
}

/// Table growth (the second key in a two-slot table) racing an increment of a key
/// that is already there: the increment lands in the entry the new table lists.
#[test]
fn growth_racing_increment() {
    model(|| {
        let m = map();
        m.inc(&Key(1));
        let t = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.inc(&Key(1)))
        };
        m.inc(&Key(2)); // grows the table
        t.join().unwrap();
        assert_eq!(m.get(&Key(1)), 2);
        assert_eq!(m.get(&Key(2)), 1);
        assert_eq!(m.len(), 2);
    });
}

/// A `Counter` handle racing `remove`: its increment is returned by `remove` or
/// re-inserts the key.
#[test]
fn handle_racing_remove() {
    model(|| {
        let m = map();
        let c = m.counter(&Key(9));
        c.inc();
        let t = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.remove(&Key(9)).unwrap_or(0))
        };
        c.inc();
        let removed = t.join().unwrap();
        assert_eq!(removed + m.get(&Key(9)), 2);
        drop(c);
    });
}

/// An increment through this thread's entry cache racing `remove`: the cached entry
/// may be dead by the time the increment reaches it, and then the increment must fall
/// back to the pinned path and re-insert the key, never land in the dead cell.
#[test]
fn cached_increment_racing_remove() {
    model(|| {
        let m = map();
        m.inc(&Key(5)); // inserts the key and caches its entry on this thread
        let t = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.remove(&Key(5)).unwrap_or(0))
        };
        m.inc(&Key(5)); // a cache hit, on the live entry or on the removed one
        let removed = t.join().unwrap();
        let left = m.get(&Key(5));
        assert!(removed == 1 || removed == 2, "removed {removed}");
        assert_eq!(removed + left, 2, "removed {removed}, left {left}");
    });
}

/// Two threads each counting a key twice (the second time through their entry
/// caches) while the table grows under them: every increment lands in the one entry.
#[test]
fn cached_increments_across_growth() {
    model(|| {
        let m = map();
        m.inc(&Key(1));
        let t = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                m.inc(&Key(1));
                m.inc(&Key(1));
            })
        };
        m.inc(&Key(2)); // grows the table
        m.inc(&Key(1)); // cached on this thread
        t.join().unwrap();
        assert_eq!(m.get(&Key(1)), 4);
        assert_eq!(m.get(&Key(2)), 1);
    });
}

/// The key cap against a remove in another shard: an insert that starts after a
/// remove has given its cap slot back must be able to take it, whatever a refused
/// insert racing them does. (The cap once reserved with an add undone on refusal;
/// the refused add held the count above the limit for a moment, and both new keys
/// could go to the overflow key.)
#[test]
fn cap_refusal_racing_remove_then_insert() {
    model(|| {
        // Two shards; with this hasher key 2 is in shard 0, keys 1 and 4 in shard 1.
        let m: Arc<Map> = Arc::new(
            CounterMap::builder()
                .shards(2)
                .key_cap(1, Key(0))
                .hasher(BuildHasherDefault::<DefaultHasher>::default())
                .build(),
        );
        m.inc(&Key(1)); // takes the one slot
        let t = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.inc(&Key(2)))
        };
        assert_eq!(m.remove(&Key(1)), Some(1)); // the slot is free again
        m.inc(&Key(4)); // a new key, after the remove returned
        t.join().unwrap();
        let (two, four, over) = (m.get(&Key(2)), m.get(&Key(4)), m.get(&Key(0)));
        // Exactly one of 2 and 4 took the slot; the other went to the overflow key.
        assert_eq!(two + four, 1, "2 -> {two}, 4 -> {four}, overflow -> {over}");
        assert_eq!(over, 1);
    });
}
