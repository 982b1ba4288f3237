//! Unit tests of the word-key map, some looking inside it.

use super::{Table, WordCounterMap, WordKey, COUNT};
use crate::sync::thread;
use core::hash::BuildHasher;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[path = "../../../tests/support/identity_hash.rs"]
mod identity_hash;
use identity_hash::Identity;

fn one_shard() -> WordCounterMap<u64, Identity> {
    WordCounterMap::builder().shards(1).hasher(Identity).build()
}

fn table_len<K: WordKey, S: BuildHasher>(m: &WordCounterMap<K, S>) -> usize {
    let guard = m.core.pin();
    m.core.shards[0].table(&guard).slots.len()
}

#[test]
fn counts_reads_removes_and_revives() {
    let m: WordCounterMap<u64> = WordCounterMap::new();
    assert!(m.is_empty());
    assert_eq!(m.get(5), 0);
    m.inc(5);
    m.add(5, 41);
    m.add(6, 0);
    assert_eq!(m.get(5), 42);
    assert_eq!(m.get(6), 0);
    assert_eq!(m.len(), 2);
    assert_eq!(m.remove(5), Some(42));
    assert_eq!(m.remove(5), None);
    assert_eq!(m.get(5), 0);
    assert_eq!(m.len(), 1);
    m.add(5, 3);
    assert_eq!(m.get(5), 3);
    assert_eq!(m.len(), 2);
    assert_eq!(m.snapshot(), HashMap::from([(5, 3), (6, 0)]));
    assert_eq!(m.snapshot_and_reset(), HashMap::from([(5, 3), (6, 0)]));
    assert_eq!(m.snapshot_and_reset(), HashMap::from([(5, 0), (6, 0)]));
    assert_eq!(m.len(), 2);
    m.clear();
    assert!(m.is_empty());
    assert_eq!(m.get(6), 0);
    assert!(m.snapshot().is_empty());
    m.inc(6);
    assert_eq!(m.get(6), 1);
    assert!(format!("{m:?}").starts_with("WordCounterMap"));
}

#[test]
fn counts_wrap_modulo_2_pow_56() {
    let m: WordCounterMap<u8> = WordCounterMap::new();
    m.add(1, COUNT);
    m.add(1, 2);
    assert_eq!(m.get(1), 1);
    m.add(2, u64::MAX);
    assert_eq!(m.get(2), COUNT);
    assert_eq!(m.remove(2), Some(COUNT));
}

#[test]
fn every_key_type_round_trips() {
    fn check<K: WordKey + core::fmt::Debug>(keys: &[K]) {
        let m: WordCounterMap<K> = WordCounterMap::new();
        for (i, &k) in keys.iter().enumerate() {
            m.add(k, i as u64 + 1);
        }
        let snap = m.snapshot();
        assert_eq!(snap.len(), keys.len());
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(snap[k], i as u64 + 1, "{k:?}");
            assert_eq!(m.get(*k), i as u64 + 1, "{k:?}");
        }
    }
    check(&[0u8, 1, 255]);
    check(&[0u16, 1, u16::MAX]);
    check(&[0u32, 1, u32::MAX]);
    check(&[0u64, 1, u64::MAX]);
    check(&[0usize, 1, usize::MAX]);
    check(&[0i8, -1, i8::MIN, i8::MAX]);
    check(&[0i16, -1, i16::MIN, i16::MAX]);
    check(&[0i32, -1, i32::MIN, i32::MAX]);
    check(&[0i64, -1, i64::MIN, i64::MAX]);
    check(&[0isize, -1, isize::MIN, isize::MAX]);
    check(&['a', 'é', '\u{10FFFF}', '\0']);
}

#[test]
fn the_free_slot_word_is_an_ordinary_key() {
    let m = one_shard();
    let e = m.core.empty;
    assert_eq!(m.get(e), 0);
    m.add(e, 2);
    m.inc(1);
    assert_eq!(m.get(e), 2);
    assert_eq!(m.len(), 2);
    assert_eq!(m.snapshot(), HashMap::from([(e, 2), (1, 1)]));
    for k in 2..50 {
        m.inc(k); // growth: the side word stays put
    }
    assert_eq!(m.get(e), 2);
    assert_eq!(m.len(), 50);
    assert_eq!(m.snapshot_and_reset()[&e], 2);
    assert_eq!(m.get(e), 0);
    m.inc(e);
    assert_eq!(m.remove(e), Some(1));
    assert_eq!(m.remove(e), None);
    assert_eq!(m.len(), 49);
    m.inc(e);
    m.clear();
    assert!(m.is_empty());
    assert_eq!(m.get(e), 0);
}

#[test]
fn growth_moves_counts_and_drops_tombstones() {
    let m = one_shard();
    let start = table_len(&m);
    for round in 0..5u64 {
        for k in 0..100 {
            m.add(round * 1000 + k, k + 1);
        }
        for k in 0..100 {
            assert_eq!(m.get(round * 1000 + k), k + 1);
        }
        for k in 0..100 {
            assert_eq!(m.remove(round * 1000 + k), Some(k + 1));
        }
    }
    assert!(m.is_empty());
    // 500 keys went through; the table holds at most its tombstones, and growth
    // rebuilds it from the live keys only.
    assert!(table_len(&m) <= 512, "table of {}", table_len(&m));
    m.grow_shard_of(0);
    assert_eq!(table_len(&m), start.max(4));
    assert_eq!(m.get(0), 0);
}

#[test]
fn colliding_keys_survive_growth_and_removal() {
    // With the identity hash, keys equal modulo the table size share a chain.
    let m = one_shard();
    let keys: Vec<u64> = (0..20).map(|i| 1 + (i << 10)).collect();
    for (i, &k) in keys.iter().enumerate() {
        m.add(k, i as u64 + 1);
    }
    m.remove(keys[3]);
    m.grow_shard_of(keys[0]);
    for (i, &k) in keys.iter().enumerate() {
        let want = if i == 3 { 0 } else { i as u64 + 1 };
        assert_eq!(m.get(k), want);
    }
    m.add(keys[3], 7);
    assert_eq!(m.get(keys[3]), 7);
}

#[test]
fn concurrent_adds_with_growth_resets_and_reads_conserve_counts() {
    let threads = 4u64;
    let per = if cfg!(miri) { 200 } else { 50_000 };
    let keys = if cfg!(miri) { 50 } else { 5_000 };
    let m: WordCounterMap<u64> = WordCounterMap::builder().shards(2).build();
    let done = AtomicBool::new(false);
    let reported = AtomicU64::new(0);
    thread::scope(|s| {
        let adders: Vec<_> = (0..threads)
            .map(|t| {
                let m = &m;
                s.spawn(move || {
                    // A skewed mix: key 0 hot, low keys warm, the rest cold.
                    let mut x = t * 0x9E37_79B9 + 1;
                    for _ in 0..per {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let k = match x % 8 {
                            0..=2 => 0,
                            3..=5 => x % 16,
                            _ => x % keys,
                        };
                        m.inc(k);
                    }
                })
            })
            .collect();
        // A dumper: every increment must be reported by exactly one reset.
        s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                let dump = m.snapshot_and_reset();
                reported.fetch_add(dump.values().sum::<u64>(), Ordering::Relaxed);
                thread::yield_now();
            }
        });
        // A reader: a key's count never goes down between resets... which run here,
        // so check instead that no read exceeds every increment issued.
        s.spawn(|| {
            while !done.load(Ordering::Acquire) {
                let total: u64 = m.snapshot().values().sum();
                assert!(total <= threads * per, "read {total}");
                thread::yield_now();
            }
        });
        for a in adders {
            a.join().unwrap();
        }
        done.store(true, Ordering::Release);
    });
    let rest: u64 = m.snapshot_and_reset().values().sum();
    assert_eq!(reported.load(Ordering::Relaxed) + rest, threads * per);
    assert!(m.snapshot().values().all(|&c| c == 0));
}

#[test]
fn reads_during_growth_are_monotonic_and_never_over_count() {
    // No resets or removals: a reader's successive reads of one key never go down and
    // never pass the adds issued, while growth moves the key again and again.
    let per = if cfg!(miri) { 100 } else { 20_000 };
    let m = one_shard();
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let adders: Vec<_> = (0..2)
            .map(|_| {
                let m = &m;
                s.spawn(move || {
                    for _ in 0..per {
                        m.inc(1);
                    }
                })
            })
            .collect();
        s.spawn(|| {
            let mut k = 2;
            while !stop.load(Ordering::Acquire) {
                m.inc(k << 8); // new keys: growth
                k += 1;
                if k % 64 == 0 {
                    m.grow_shard_of(1);
                }
                thread::yield_now();
            }
        });
        s.spawn(|| {
            let mut last = 0;
            while !stop.load(Ordering::Acquire) {
                let c = m.get(1);
                assert!(c >= last, "{c} after {last}");
                assert!(c <= 2 * per, "{c} > {}", 2 * per);
                last = c;
            }
        });
        for a in adders {
            a.join().unwrap();
        }
        stop.store(true, Ordering::Release);
    });
    assert_eq!(m.get(1), 2 * per);
}

#[test]
fn a_striped_key_counts_resets_moves_and_is_removed() {
    let m = one_shard();
    m.add(3, 5);
    m.inc(4);
    m.promote_key(3);
    assert!(m.has_cell(3) && !m.has_cell(4));
    m.add(3, 2);
    assert_eq!(m.get(3), 7);
    assert_eq!(m.snapshot()[&3], 7);
    assert_eq!(m.snapshot_and_reset()[&3], 7);
    assert_eq!(m.get(3), 0);
    m.inc(3);
    // Growth moves the cell itself, more than once.
    for k in 10..40 {
        m.inc(k << 8);
    }
    m.grow_shard_of(3);
    assert!(m.has_cell(3));
    m.add(3, 2);
    assert_eq!(m.get(3), 3);
    assert_eq!(m.remove(3), Some(3));
    assert!(!m.has_cell(3));
    assert_eq!(m.get(3), 0);
    m.add(3, 4); // revived as a plain word
    assert_eq!(m.get(3), 4);
    m.promote_key(3);
    m.promote_key(4);
    m.clear();
    assert!(m.is_empty());
    assert_eq!(m.get(4), 0);
    m.promote_key(4); // absent: nothing to do
    m.inc(4);
    m.promote_key(4);
    assert_eq!(m.get(4), 1); // dropped with its cell listed
}

#[test]
fn a_hot_key_is_promoted_and_keeps_every_count() {
    let per = if cfg!(miri) { 200 } else { 100_000 };
    let m: WordCounterMap<u64> = WordCounterMap::builder().shards(1).build();
    m.inc(9);
    let rounds = if cfg!(miri) { 1 } else { 50 };
    let mut done = 0;
    for _ in 0..rounds {
        let start = std::sync::Barrier::new(4);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..per {
                        m.inc(9);
                    }
                });
            }
        });
        done += 1;
        if m.has_cell(9) {
            break;
        }
    }
    assert_eq!(m.get(9), 1 + 4 * per * done);
    if !cfg!(miri) {
        assert!(m.has_cell(9), "a contended key moves to a cell");
    }
}

#[test]
fn a_handle_counts_through_growth_removal_and_clear() {
    let m = one_shard();
    let c = m.counter(3);
    assert!(m.has_cell(3), "a handle's key lives in a cell");
    assert_eq!(m.len(), 1);
    c.inc();
    c.add(4);
    m.inc(3); // the map's own path reaches the same cell
    assert_eq!((c.get(), m.get(3)), (6, 6));
    assert_eq!(c.key(), 3);
    for k in 10..60 {
        m.inc(k); // growths move the cell, not its count
    }
    c.inc();
    assert_eq!((c.get(), m.get(3)), (7, 7));
    let d = c.clone();
    assert_eq!(m.remove(3), Some(7));
    assert_eq!(c.get(), 0, "removed: the handle reads the map");
    d.add(2); // re-inserts the key, in a new cell
    assert_eq!((m.get(3), c.get(), d.get()), (2, 2, 2));
    c.inc(); // its old cell is dead: re-points to the new one
    assert_eq!(m.get(3), 3);
    assert!(m.has_cell(3));
    assert_eq!(m.snapshot_and_reset()[&3], 3);
    d.inc();
    assert_eq!(m.get(3), 1);
    m.clear();
    assert_eq!(c.get(), 0);
    c.inc();
    d.inc();
    assert_eq!(m.get(3), 2);
    assert_eq!(m.len(), 1);
    assert!(format!("{c:?}").contains("key: 3"));
}

#[test]
fn a_handle_on_the_free_slot_word_and_on_a_promoted_key() {
    let m = one_shard();
    let e = m.core.empty;
    m.add(e, 5);
    let c = m.counter(e);
    c.inc();
    assert_eq!((m.get(e), c.get()), (6, 6));
    assert_eq!(m.snapshot()[&e], 6);
    assert_eq!(m.snapshot_and_reset()[&e], 6);
    c.add(2);
    assert_eq!(m.remove(e), Some(2));
    c.inc();
    assert_eq!(m.get(e), 1);
    // A key already promoted by adders: the handle shares its cell.
    m.add(8, 10);
    m.promote_key(8);
    let h = m.counter(8);
    h.inc();
    m.inc(8);
    assert_eq!(m.get(8), 12);
    assert_eq!(m.len(), 2);
    drop(h);
    assert_eq!(m.get(8), 12, "dropping a handle leaves the key");
}

#[test]
fn handles_racing_removal_resets_and_growth_conserve_counts() {
    let threads = 4u64;
    let per = if cfg!(miri) { 300 } else { 50_000 };
    let m: WordCounterMap<u64> = WordCounterMap::builder().shards(1).build();
    let done = AtomicBool::new(false);
    let reported = AtomicU64::new(0);
    thread::scope(|s| {
        let adders: Vec<_> = (0..threads)
            .map(|t| {
                let m = &m;
                s.spawn(move || {
                    let hot = m.counter(t % 2);
                    for i in 0..per {
                        if i % 3 == 0 {
                            m.inc(100 + i % 64); // inserts: growth, moves of the cells
                        } else {
                            hot.inc();
                        }
                    }
                })
            })
            .collect();
        // Removals and resets take counts; each increment must be taken once.
        s.spawn(|| {
            let mut i = 0u64;
            while !done.load(Ordering::Acquire) {
                let n = if i % 3 == 0 {
                    m.remove(i / 3 % 2).unwrap_or(0)
                } else {
                    m.snapshot_and_reset().values().sum()
                };
                reported.fetch_add(n, Ordering::Relaxed);
                i += 1;
                thread::yield_now();
            }
        });
        for a in adders {
            a.join().unwrap();
        }
        done.store(true, Ordering::Release);
    });
    let rest: u64 = m.snapshot_and_reset().values().sum();
    assert_eq!(reported.load(Ordering::Relaxed) + rest, threads * per);
}

#[test]
fn iteration_and_membership_see_listed_keys_only() {
    let m = one_shard();
    let e = m.core.empty;
    for k in 0..40u64 {
        m.add(k, k + 1);
    }
    m.add(e, 7);
    m.promote_key(3);
    m.remove(5);
    m.remove(6);
    m.add(6, 100); // revived
    assert!(m.contains_key(3) && m.contains_key(6) && m.contains_key(e));
    assert!(!m.contains_key(5) && !m.contains_key(99));
    let mut want: HashMap<u64, u64> = (0..40).map(|k| (k, k + 1)).collect();
    want.remove(&5);
    want.insert(6, 100);
    want.insert(e, 7);
    let listed: HashMap<u64, u64> = m.iter().collect();
    assert_eq!(listed, want);
    assert_eq!(m.iter().count(), want.len(), "each key once");
    assert_eq!(m.snapshot(), want);
    let mut total = 0;
    m.for_each(|_, n| total += n);
    assert_eq!(total, want.values().sum::<u64>());
    // A walk that started before a growth still sees each key once.
    let mut it = m.iter();
    let first = it.next().unwrap();
    m.grow_shard_of(1);
    m.grow_shard_of(1);
    let rest: Vec<_> = it.collect();
    assert_eq!(rest.len() + 1, want.len());
    assert!(!rest.iter().any(|&(k, _)| k == first.0));
    assert!(format!("{:?}", m.iter()).starts_with("WordIter"));
}

#[test]
fn the_key_cap_sends_new_keys_to_the_overflow_key() {
    let m: WordCounterMap<u64, Identity> = WordCounterMap::builder()
        .shards(2)
        .hasher(Identity)
        .key_cap(3, 999)
        .build();
    for k in 0..10 {
        m.add(k, 2);
    }
    assert_eq!(m.len(), 4, "three keys and the overflow key");
    assert_eq!(m.get(999), 14);
    assert_eq!(m.get(5), 0);
    let refused = m.counter(7);
    assert_eq!(
        refused.key(),
        999,
        "a refused handle counts the overflow key"
    );
    refused.inc();
    assert_eq!(m.get(999), 15);
    // Removal frees a place; the overflow key itself takes none.
    assert_eq!(m.remove(0), Some(2));
    assert_eq!(m.remove(999), Some(15));
    m.inc(999);
    m.inc(5);
    assert_eq!(m.get(5), 1);
    m.inc(6);
    assert_eq!(m.get(6), 0);
    assert_eq!(m.get(999), 2);
    // A removed key's tombstone is revived only with a place.
    m.inc(0);
    assert_eq!(m.get(0), 0);
    // `clear` gives every place back, and so does the free-slot key's removal.
    m.clear();
    assert_eq!(
        m.core
            .cap
            .as_ref()
            .unwrap()
            .reserved
            .load(Ordering::Relaxed),
        0
    );
    let e = m.core.empty;
    for k in [e, 1, 2] {
        m.inc(k);
    }
    m.inc(3);
    assert_eq!((m.get(e), m.get(3), m.get(999)), (1, 0, 1));
    assert_eq!(m.remove(e), Some(1));
    m.inc(3);
    assert_eq!(m.get(3), 1);
    let zero = WordCounterMap::<u8>::builder().key_cap(0, 0).build();
    zero.inc(1);
    zero.inc(2);
    assert_eq!(zero.snapshot(), HashMap::from([(0, 2)]));
    assert!(format!("{:?}", WordCounterMap::<u8>::builder().key_cap(4, 0)).contains("Some(4)"));
}

#[test]
fn a_full_key_cap_under_contention_lists_at_most_its_limit() {
    let threads = 4u64;
    let per = if cfg!(miri) { 100 } else { 20_000 };
    let m: WordCounterMap<u64> = WordCounterMap::builder()
        .shards(4)
        .key_cap(50, u64::MAX)
        .build();
    thread::scope(|s| {
        for t in 0..threads {
            let m = &m;
            s.spawn(move || {
                for i in 0..per {
                    let k = (i * 31 + t * 7) % 200;
                    m.inc(k);
                    if i % 64 == 0 {
                        m.remove((k + 1) % 200);
                    }
                }
            });
        }
        // A walk is no instant (a key it passed may be removed and another inserted
        // in a shard it has yet to reach), so the cap is checked on its own count.
        s.spawn(|| {
            for _ in 0..if cfg!(miri) { 5 } else { 2_000 } {
                let cap = m.core.cap.as_ref().unwrap();
                let held = cap.reserved.load(Ordering::Relaxed);
                assert!(held <= 50, "{held} places taken under a cap of 50");
                thread::yield_now();
            }
        });
    });
    let snap = m.snapshot();
    assert!(snap.len() <= 51);
    assert_eq!(m.len(), snap.len());
    let reserved = m
        .core
        .cap
        .as_ref()
        .unwrap()
        .reserved
        .load(Ordering::Relaxed);
    assert_eq!(reserved, snap.keys().filter(|&&k| k != u64::MAX).count());
}

/// Whether this thread's cache of hot cells holds `k`'s cell of `m`.
fn cached<S: BuildHasher>(m: &WordCounterMap<u64, S>, k: u64) -> bool {
    super::hot::holds(m.core.tag(), k)
}

#[test]
fn a_hot_key_counts_through_the_thread_cache_until_its_cell_dies() {
    let m = one_shard();
    m.add(4, 10);
    m.promote_key(4);
    assert!(!cached(&m, 4));
    m.inc(4); // the pinned path finds the cell and caches it
    assert!(cached(&m, 4));
    m.inc(4); // through the cache
    assert_eq!(m.get(4), 12);
    for k in 100..140 {
        m.inc(k); // growth moves the cell; the cached one is still the key's
    }
    m.inc(4);
    assert_eq!(m.get(4), 13);
    assert_eq!(m.snapshot_and_reset()[&4], 13);
    m.inc(4);
    assert_eq!(m.remove(4), Some(1));
    m.inc(4); // the cached cell is dead: empties the way, inserts the key anew
    assert!(!cached(&m, 4));
    assert_eq!(m.get(4), 1);
    m.promote_key(4);
    m.inc(4);
    assert!(cached(&m, 4));
    m.clear();
    m.add(4, 5);
    assert_eq!(m.get(4), 5, "a cleared key's cached cell takes nothing");
}

#[test]
fn a_dropped_maps_cached_cells_are_dead() {
    // A later map may get a dropped one's shard array address, which names maps in
    // the caches: dropping a map kills every cell it lists, so a way still holding one
    // finds it dead and never counts into it.
    let m = one_shard();
    m.add(9, 3);
    m.promote_key(9);
    m.inc(9);
    let tag = m.core.tag();
    assert!(super::hot::holds_live(tag, 9));
    drop(m);
    assert!(super::hot::holds(tag, 9), "the way still holds the cell");
    assert!(!super::hot::holds_live(tag, 9), "and it is dead");
    let n = one_shard();
    n.inc(9);
    n.inc(9);
    assert_eq!(n.get(9), 2);
}

#[test]
fn two_hot_keys_sharing_a_way_take_it_on_the_fourth_miss() {
    let m = one_shard();
    // Two keys whose words pick the same way.
    let way = |k: u64| super::hot::way_of(k);
    let a = 1u64;
    let b = (2..).find(|&k| way(k) == way(a)).unwrap();
    for k in [a, b] {
        m.inc(k);
        m.promote_key(k);
    }
    m.inc(a);
    assert!(cached(&m, a));
    for i in 0..3 {
        m.inc(b);
        assert!(cached(&m, a), "miss {i} keeps the way");
    }
    m.inc(b);
    assert!(cached(&m, b));
    assert_eq!((m.get(a), m.get(b)), (2, 5));
}

#[test]
fn a_moved_maps_cached_cells_stay_its_own() {
    // A map moved away keeps its cells live, and a new map may be built where it
    // was: the caches name a map by its shard array, which a move does not take
    // along, so the new map never counts into the first one's cells.
    let mut slot = Some(one_shard());
    let m = slot.as_ref().unwrap();
    m.add(9, 3);
    m.promote_key(9);
    m.inc(9);
    assert!(cached(m, 9));
    let tag = m.core.tag();
    let moved = Box::new(slot.take().unwrap());
    assert_eq!(moved.core.tag(), tag, "the name moves with the map");
    slot = Some(one_shard());
    let n = slot.as_ref().unwrap();
    n.inc(9);
    n.inc(9);
    assert_eq!((n.get(9), moved.get(9)), (2, 4));
    moved.inc(9);
    assert_eq!(moved.get(9), 5);
}

/// The table this thread leases for `k`'s shard of `m` (null if none), and that
/// shard's current table.
fn lease_of<S: BuildHasher>(m: &WordCounterMap<u64, S>, k: u64) -> (*const Table, *const Table) {
    let hash = m.core.hash_word(&m.hasher, k);
    let shard = m.core.shard(hash);
    let guard = m.core.pin();
    let current: *const Table = shard.table(&guard);
    (
        super::lease::leased(m.core.id, m.core.shard_of(hash)),
        current,
    )
}

/// The references on `t`, a table kept alive by the caller.
fn refs(t: *const Table) -> usize {
    // SAFETY: the caller keeps `t` alive.
    unsafe { &(*t).refs }.load(Ordering::Relaxed)
}

#[test]
fn adds_lease_the_current_table_and_count_through_it() {
    let m = one_shard();
    m.inc(3); // inserts, under the lock: no lease yet
    assert!(lease_of(&m, 3).0.is_null());
    m.inc(3); // pinned, then leases the table
    let (leased, current) = lease_of(&m, 3);
    assert_eq!(leased, current);
    assert_eq!(refs(current), 2, "the shard's reference and the lease");
    m.add(3, 5); // through the lease
    m.inc(4); // a new key: the lease misses, the pinned path inserts it
    m.inc(4);
    assert_eq!((m.get(3), m.get(4)), (7, 2));
}

#[test]
fn a_leased_table_outlives_its_replacement_and_is_given_up_after() {
    // Growth and `clear` retire the leased table through the epoch; the lease keeps
    // it alive (Miri checks that nothing reads freed memory), the next add finds it
    // frozen or dead, counts on the pinned path and leases the new table.
    let m = one_shard();
    m.add(3, 1);
    m.inc(3);
    let (old, _) = lease_of(&m, 3);
    m.grow_shard_of(3);
    // Let the collector run the retirement (other tests' pins may delay it a while):
    // a few hundred flushes at least, so that a table freed despite the lease would
    // be freed by now (and the reads below caught by Miri).
    for i in 0..100_000 {
        crossbeam_epoch::pin().flush();
        if i >= 300 && refs(old) == 1 {
            break;
        }
    }
    assert_eq!(refs(old), 1, "the epoch gave up the shard's reference");
    m.inc(3); // the leased table is frozen: pinned path, lease the new table
    let (leased, current) = lease_of(&m, 3);
    assert!(leased != old && leased == current);
    assert_eq!(m.get(3), 3);
    m.clear();
    m.inc(3); // the leased table is all tombstones: inserted anew
    m.inc(3);
    assert_eq!(m.get(3), 2);
    let (leased, current) = lease_of(&m, 3);
    assert_eq!(leased, current);
}

#[test]
fn a_leased_add_on_a_removed_key_inserts_it_anew() {
    let m = one_shard();
    m.add(3, 2);
    m.inc(3);
    assert_eq!(m.remove(3), Some(3));
    m.inc(3); // the leased word is a tombstone: revived under the lock
    m.add(3, 4);
    assert_eq!(m.get(3), 5);
    assert_eq!(m.snapshot_and_reset()[&3], 5);
    m.inc(3);
    assert_eq!(m.get(3), 1);
}

#[test]
fn a_dropped_maps_leases_never_count_into_a_later_map() {
    // Leases name a map by an id no other map gets, so a later map (maybe at the
    // same address) never counts into a dropped map's tables; the drop frees the
    // leased tables' slots at once, and the last lease frees the rest.
    let m = one_shard();
    m.inc(3);
    m.inc(3);
    let (t, _) = lease_of(&m, 3);
    assert_eq!(refs(t), 2);
    drop(m);
    assert_eq!(refs(t), 1, "only this thread's lease is left");
    // SAFETY: the lease keeps `t` alive.
    let slots: &[super::Slot] = unsafe { &(*t).slots };
    assert!(slots.is_empty(), "its slots went with the map");
    let n = one_shard();
    for _ in 0..6 {
        n.inc(3); // pinned adds into another map: the fourth switches the leases
    }
    assert_eq!(n.get(3), 6);
    let (leased, current) = lease_of(&n, 3);
    assert_eq!(leased, current);
}

#[test]
fn a_threads_leases_go_when_it_exits() {
    let m = one_shard();
    m.inc(3);
    thread::scope(|s| {
        s.spawn(|| {
            m.inc(3);
            m.inc(3);
            assert_eq!(refs(lease_of(&m, 3).1), 2);
        });
    });
    // The thread's locals are destroyed as it exits, which may be after the join.
    let t = lease_of(&m, 3).1;
    for _ in 0..1_000_000 {
        if refs(t) == 1 {
            break;
        }
        std::thread::yield_now();
    }
    assert_eq!(refs(t), 1, "the thread's lease went with it");
    assert_eq!(m.get(3), 3);
}

#[test]
fn alternating_maps_keep_the_first_lease() {
    // A thread counting into two maps in turn keeps its leases on the first: the
    // other's pinned adds reset the count of strays each time the first is hit.
    let (a, b) = (one_shard(), one_shard());
    a.inc(1);
    a.inc(1);
    for _ in 0..20 {
        a.inc(1);
        b.inc(1);
    }
    assert!(!lease_of(&a, 1).0.is_null());
    assert!(lease_of(&b, 1).0.is_null());
    assert_eq!((a.get(1), b.get(1)), (22, 20));
}

#[test]
fn a_promotion_that_loses_to_an_add_tries_again_with_the_new_count() {
    use super::{cell_of, cell_ptr, promote, release_cell, CELL, DEAD, FROZEN};
    // The promoter read 5; another add made it 7 before the promotion's CAS. The
    // promotion must not give up (on a hot key the word changes all the time, and
    // a promotion that gave up would make and free a cell per try, seldom winning):
    // it carries 7 into the cell and wins.
    let w = AtomicU64::new(7);
    assert!(promote(&w, 5, 2).is_ok());
    let cur = w.load(Ordering::Relaxed);
    assert!(cur & CELL != 0);
    let guard = crossbeam_epoch::pin();
    // SAFETY: a `CELL` word just published on this thread, under a pin.
    assert_eq!(unsafe { cell_of(cur, &guard) }.sum(), Some(7));
    // SAFETY: the listing's reference, which this word held, given up once.
    unsafe { release_cell(cell_ptr(cur)) };
    // A word that became a tombstone or froze meanwhile: the promotion fails.
    for flagged in [DEAD, FROZEN | 7] {
        let w = AtomicU64::new(flagged);
        assert_eq!(promote(&w, 5, 2), Err(flagged));
    }
}
