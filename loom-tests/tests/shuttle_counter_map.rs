//! shuttle tests of `CounterMap`: random and PCT schedules of bigger scenarios than
//! loom can explore (many keys, table growth, resets and removals together), and
//! histories of small random operations checked for linearizability against a
//! sequential map.
//!
//! Run: `RUSTFLAGS="--cfg atomkit_shuttle" SHUTTLE_SILENCE_WARNINGS=1 cargo test --release -p atomkit-loom-tests --test shuttle_counter_map`
//!
//! Each scenario runs with `u64` keys, which the map keeps in its slots, and with
//! `u128` keys, which it keeps in entries.
//!
//! shuttle treats every atomic as SeqCst, so these find logic races (lost or double
//! counts, wrong slow paths), not weak-memory bugs; loom covers those.
#![cfg(atomkit_shuttle)]

#[path = "../../tests/support/counter_model.rs"]
mod counter_model;
#[path = "../../tests/support/lincheck.rs"]
mod lincheck;

use atomkit::counter_map::{Counter, CounterMap};
use atomkit_loom_tests::shuttle_iters;
use shuttle::sync::Arc;
use shuttle::thread;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use counter_model::ModelKey;

type Map<K> = CounterMap<K, BuildHasherDefault<DefaultHasher>>;

fn map<K: ModelKey>(shards: usize) -> Arc<Map<K>> {
    Arc::new(
        CounterMap::builder()
            .shards(shards)
            .hasher(BuildHasherDefault::<DefaultHasher>::default())
            .build(),
    )
}

/// Iterations per scheduler (`cargo xtask shuttle --long` raises it).
fn iters() -> usize {
    shuttle_iters(3_000)
}

/// Writers over many keys (growing the tables from two slots), a resetter and a
/// remover: every increment is reported exactly once, by a reset, a remove, or the
/// final count.
fn many_keys_growth_resets_removes<K: ModelKey>() {
    let m = map::<K>(2);
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                for i in 0..12u64 {
                    m.add(&K::of((i * 7 + t) % 10), 1 + t);
                }
            })
        })
        .collect();
    let resetter = {
        let m = Arc::clone(&m);
        thread::spawn(move || {
            let mut seen = 0;
            for _ in 0..3 {
                seen += m.snapshot_and_reset().values().sum::<u64>();
                thread::yield_now();
            }
            seen
        })
    };
    let remover = {
        let m = Arc::clone(&m);
        thread::spawn(move || {
            let mut taken = 0;
            for k in [0u64, 3, 7, 0] {
                taken += m.remove(&K::of(k)).unwrap_or(0);
                thread::yield_now();
            }
            taken
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    let seen = resetter.join().unwrap();
    let taken = remover.join().unwrap();
    let left: u64 = m.snapshot().values().sum();
    assert_eq!(seen + taken + left, 12 + 12 * 2); // thread 0 adds 1, thread 1 adds 2
    let keys = m.snapshot().len();
    assert_eq!(m.len(), keys);
}

#[test]
fn random_many_keys_growth_resets_removes() {
    shuttle::check_random(many_keys_growth_resets_removes::<u64>, iters());
    shuttle::check_random(many_keys_growth_resets_removes::<u128>, iters());
}

#[test]
fn pct_many_keys_growth_resets_removes() {
    shuttle::check_pct(many_keys_growth_resets_removes::<u64>, iters(), 3);
    shuttle::check_pct(many_keys_growth_resets_removes::<u128>, iters(), 3);
}

/// A hot key from three threads (striping), one of them through a handle, with a
/// concurrent reset and clear.
fn hot_key_with_reset_and_clear<K: ModelKey>() {
    let m = map::<K>(1);
    let ts: Vec<_> = (0..3)
        .map(|t| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                if t == 0 {
                    let c = m.counter(&K::of(42));
                    for _ in 0..6 {
                        c.inc();
                    }
                } else {
                    for _ in 0..6 {
                        m.inc(&K::of(42));
                    }
                }
            })
        })
        .collect();
    let mut seen = m.snapshot_and_reset().get(&K::of(42)).copied().unwrap_or(0);
    let before_clear = m.snapshot_and_reset().get(&K::of(42)).copied().unwrap_or(0);
    seen += before_clear;
    // `clear` discards what it removes, so count through `remove` instead.
    seen += m.remove(&K::of(42)).unwrap_or(0);
    for t in ts {
        t.join().unwrap();
    }
    seen += m.get(&K::of(42));
    assert_eq!(seen, 18);
    m.clear();
    assert!(m.is_empty());
}

#[test]
fn random_hot_key_with_reset_and_clear() {
    shuttle::check_random(hot_key_with_reset_and_clear::<u64>, iters());
    shuttle::check_random(hot_key_with_reset_and_clear::<u128>, iters());
}

#[test]
fn pct_hot_key_with_reset_and_clear() {
    shuttle::check_pct(hot_key_with_reset_and_clear::<u64>, iters(), 3);
    shuttle::check_pct(hot_key_with_reset_and_clear::<u128>, iters(), 3);
}

/// The key cap under concurrent inserts: never more than `limit` ordinary keys, and
/// every increment counted somewhere.
fn key_cap_concurrent<K: ModelKey>() {
    let m = Arc::new(
        CounterMap::builder()
            .shards(2)
            .hasher(BuildHasherDefault::<DefaultHasher>::default())
            .key_cap(3, K::of(u64::MAX))
            .build(),
    );
    let ts: Vec<_> = (0..2u64)
        .map(|t| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                for k in 0..4u64 {
                    m.inc(&K::of(t * 10 + k));
                }
                m.remove(&K::of(t * 10));
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
    let snap: HashMap<K, u64> = m.snapshot();
    let ordinary = snap.keys().filter(|k| k.id() != u64::MAX).count();
    assert!(ordinary <= 3, "{snap:?}");
    assert_eq!(m.len(), snap.len());
}

#[test]
fn random_key_cap_concurrent() {
    shuttle::check_random(key_cap_concurrent::<u64>, iters());
    shuttle::check_random(key_cap_concurrent::<u128>, iters());
}

/// An increment, a reset and a remove racing on one key: a reset must never revive
/// the count words a remove killed (the increment would land in a dead entry and be
/// lost). Too many interleavings for loom with three threads; shuttle samples them.
fn increment_reset_remove_three_way<K: ModelKey>() {
    let m = map::<K>(1);
    m.inc(&K::of(5));
    let inc = {
        let m = Arc::clone(&m);
        thread::spawn(move || {
            m.inc(&K::of(5));
            m.inc(&K::of(5));
        })
    };
    let reset = {
        let m = Arc::clone(&m);
        thread::spawn(move || m.snapshot_and_reset().get(&K::of(5)).copied().unwrap_or(0))
    };
    let removed = m.remove(&K::of(5)).unwrap_or(0);
    inc.join().unwrap();
    let reset = reset.join().unwrap();
    let left = m.get(&K::of(5));
    assert_eq!(
        removed + reset + left,
        3,
        "removed {removed}, reset {reset}, left {left}"
    );
}

#[test]
fn random_increment_reset_remove_three_way() {
    shuttle::check_random(increment_reset_remove_three_way::<u64>, iters());
    shuttle::check_random(increment_reset_remove_three_way::<u128>, iters());
}

#[test]
fn pct_increment_reset_remove_three_way() {
    shuttle::check_pct(increment_reset_remove_three_way::<u64>, iters(), 3);
    shuttle::check_pct(increment_reset_remove_three_way::<u128>, iters(), 3);
}

/// One history of `shape`: two phases of 4 random operations per thread (see
/// `counter_model::plan`), with a reset or a snapshot alone between them and exact
/// reads at the end, checked for linearizability against the sequential map. The
/// operations are drawn from shuttle's random source, so each schedule gets its own
/// mix and a failure replays with its schedule.
fn linearizable<K: ModelKey>(shape: counter_model::Shape) {
    use counter_model::{apply, plan, Op, Rng, HANDLES};
    use shuttle::rand::RngCore;
    let mut rng = Rng::new(shuttle::rand::thread_rng().next_u64());
    let map = shape.map::<K, _>(BuildHasherDefault::<DefaultHasher>::default());
    let rec = lincheck::Recorder::default();
    let alone = shape.threads;
    for phase in 0..2 {
        if phase > 0 {
            for op in shape.between_phases(&mut rng) {
                rec.record(alone, op.clone(), || apply(&map, &mut [], &op));
            }
        }
        let plans: Vec<Vec<Op>> = (0..shape.threads)
            .map(|t| plan(&mut rng, t, 4, shape.keys, &mut [false; 4]))
            .collect();
        thread::scope(|s| {
            for (t, ops) in plans.iter().enumerate() {
                let (map, rec) = (&map, &rec);
                s.spawn(move || {
                    let mut handles: Vec<Option<Counter<'_, K, _>>> =
                        (0..HANDLES).map(|_| None).collect();
                    for op in ops {
                        rec.record(t, op.clone(), || apply(map, &mut handles, op));
                    }
                });
            }
        });
    }
    for op in shape.tail() {
        rec.record(alone, op.clone(), || apply(&map, &mut [], &op));
    }
    if let Err(e) = shape.check(&rec.history()) {
        panic!("{shape:?}: {e}");
    }
}

/// Each shape of history under the random and the PCT scheduler. The checker's
/// search recurses once per event, deeper than shuttle's default stack allows for
/// the biggest histories, so the threads get a bigger one.
fn linearizable_both(shape: usize) {
    use shuttle::scheduler::{PctScheduler, RandomScheduler};
    let shape = counter_model::SHAPES[shape];
    let iters = iters();
    let mut config = shuttle::Config::new();
    config.stack_size = 1 << 20;
    shuttle::Runner::new(RandomScheduler::new(iters), config.clone())
        .run(move || linearizable::<u64>(shape));
    shuttle::Runner::new(PctScheduler::new(3, iters), config.clone())
        .run(move || linearizable::<u64>(shape));
    shuttle::Runner::new(RandomScheduler::new(iters), config.clone())
        .run(move || linearizable::<u128>(shape));
    shuttle::Runner::new(PctScheduler::new(3, iters), config)
        .run(move || linearizable::<u128>(shape));
}

#[test]
fn linearizable_hot_key() {
    linearizable_both(0);
}

#[test]
fn linearizable_three_keys() {
    linearizable_both(1);
}

#[test]
fn linearizable_key_cap_of_one() {
    linearizable_both(2);
}

#[test]
fn linearizable_key_cap_of_two_four_threads() {
    linearizable_both(3);
}

/// Entries the map retires in an execution are freed inside it: under shuttle the
/// map has an epoch collector of its own, dropped with the map. With the process-wide
/// collector, whichever thread next advanced the global epoch could free them later,
/// outside any execution, where the entry's atomics (the checker's) panic; a test
/// thread's exit did it from a thread-local destructor and aborted the test binary.
#[test]
fn retired_entries_are_freed_inside_the_execution() {
    shuttle::check_random(
        || {
            let m = map::<u128>(2);
            for k in 0..40u128 {
                m.inc(&k);
            }
            for k in 0..20u128 {
                assert_eq!(m.remove(&k), Some(1));
            }
            m.clear();
            let w = map::<u64>(2);
            for k in 0..40u64 {
                w.inc(&k);
            }
            w.counter(&3).inc();
            for k in 0..20u64 {
                assert!(w.remove(&k).is_some());
            }
            w.clear();
        },
        20,
    );
    // Outside any execution: advance the process-wide collector until everything
    // retired to it so far has been freed.
    for _ in 0..512 {
        crossbeam_epoch::pin().flush();
    }
}
