//! Unit tests that look inside the map.

use super::CounterMap;
use crate::sync::thread;

// These tests look inside the entry core, which keys of a word type (`u64`, say) do not
// use: `u128` keys do.

#[test]
fn contention_grows_stripes_and_keeps_count() {
    let m: CounterMap<u128> = CounterMap::new();
    let per = if cfg!(miri) { 200 } else { 100_000 };
    let h = m.hash(&1u128);
    let striped = || {
        let guard = m.pin();
        let e = m.shard(h).table(&guard).find(h, &1u128, &guard).unwrap();
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
    let m = CounterMap::<u128>::builder().shards(1).build();
    for round in 0..5u64 {
        for k in 0..100 {
            m.add(&u128::from(round * 1000 + k), k + 1);
        }
        for k in 0..100 {
            assert_eq!(m.remove(&u128::from(round * 1000 + k)), Some(k + 1));
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

/// Dropping a map kills every entry before it releases any: an entry that outlives
/// the map through another reference (as a per-thread cache slot holds one) must be
/// dead, so a later map at the same address can never count into it, even when a
/// key's `Drop` panics halfway through the map's drop.
#[test]
fn drop_kills_every_entry_even_when_a_key_drop_panics() {
    use super::table::Entry;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    static ARMED: AtomicBool = AtomicBool::new(false);
    #[derive(Clone, PartialEq, Eq, Hash)]
    struct Key(u32);
    impl Drop for Key {
        fn drop(&mut self) {
            if self.0 == 0 && ARMED.load(SeqCst) {
                panic!("drop of key 0");
            }
        }
    }
    let m: CounterMap<Key> = CounterMap::builder().shards(1).build();
    let keys = if cfg!(miri) { 8 } else { 64 };
    // Count on a thread that has exited (its cache released its references) by the
    // time `join` returns, so the map holds the only reference but ours below.
    std::thread::scope(|s| {
        s.spawn(|| {
            for k in 0..keys {
                m.inc(&Key(k));
            }
        })
        .join()
        .unwrap();
    });
    // Hold one more reference on every entry but key 0's, whose last reference the
    // map's drop then releases (and whose key's drop panics).
    let held: Vec<*const Entry<Key>> = {
        let guard = m.pin();
        (1..keys)
            .map(|k| {
                let h = m.hash(&Key(k));
                let e = m.shard(h).table(&guard).find(h, &Key(k), &guard).unwrap();
                e.acquire();
                e as *const Entry<Key>
            })
            .collect()
    };
    ARMED.store(true, SeqCst);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(m)));
    ARMED.store(false, SeqCst);
    assert!(r.is_err(), "key 0's drop panics inside the map's drop");
    for e in held {
        // SAFETY: we hold a reference on each entry, taken above.
        let cell_dead = unsafe { (&*e).cell.sum().is_none() };
        assert!(cell_dead, "an entry outlived its map alive");
        // SAFETY: gives back the reference taken above, once.
        unsafe { Entry::release(e) };
    }
}
