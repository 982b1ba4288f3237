//! Unit tests of the word-key map, some looking inside it.

use super::{WordCounterMap, WordKey, COUNT};
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
    let guard = m.pin();
    m.shards[0].table(&guard).slots.len()
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
    let e = m.empty;
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
