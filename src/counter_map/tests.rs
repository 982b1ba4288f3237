//! Unit tests that look inside the map.

use super::CounterMap;
use crate::sync::thread;

#[test]
fn contention_grows_stripes_and_keeps_count() {
    let m: CounterMap<u64> = CounterMap::new();
    let per = if cfg!(miri) { 200 } else { 100_000 };
    let h = m.hash(&1u64);
    let striped = || {
        let guard = m.pin();
        let e = m.shard(h).table(&guard).find(h, &1u64, &guard).unwrap();
        e.cell.is_striped()
    };
    // Threads collide on the word only while they run at the same time, which a busy
    // machine (more runnable threads than cores) may not allow for a while: hammer in
    // rounds, each started together, until the key has grown stripes.
    let rounds = if cfg!(miri) { 1 } else { 200 };
    let mut done = 0;
    for _ in 0..rounds {
        let start = std::sync::Barrier::new(4);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..per {
                        m.inc(&1);
                    }
                });
            }
        });
        done += 1;
        if striped() {
            break;
        }
    }
    assert_eq!(m.get(&1), 4 * per * done);
    if !cfg!(miri) {
        assert!(striped(), "a hot key grows stripes");
    }
    assert_eq!(m.snapshot_and_reset()[&1], 4 * per * done);
    assert_eq!(m.get(&1), 0);
}

#[test]
fn growth_keeps_entries_and_tombstones_are_cleaned() {
    let m = CounterMap::<u64>::builder().shards(1).build();
    for round in 0..5u64 {
        for k in 0..100 {
            m.add(&(round * 1000 + k), k + 1);
        }
        for k in 0..100 {
            assert_eq!(m.remove(&(round * 1000 + k)), Some(k + 1));
        }
    }
    assert!(m.is_empty());
    let guard = m.pin();
    let cap = m.shards[0].table(&guard).capacity();
    assert!(
        cap <= 512,
        "tombstones are dropped on growth, capacity {cap}"
    );
}
