//! Fuzz `CounterMap` single-threaded against a `HashMap<K, u64>` model, with `u16`
//! keys (kept in the slots) or `u128` keys (kept in entries), as the input says.
#![no_main]

use arbitrary::Arbitrary;
use atomkit::counter_map::CounterMap;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

#[derive(Arbitrary, Debug)]
enum Op {
    Inc(u8),
    Add(u8, u64),
    Get(u8),
    Remove(u8),
    Snapshot,
    Reset,
    Clear,
    Len,
    HandleAdd(u8, u64),
}

#[derive(Arbitrary, Debug)]
struct Input {
    shards: u8,
    cap: Option<u8>,
    /// `u128` keys instead of `u16`.
    entries: bool,
    ops: Vec<Op>,
}

/// A key type of the fuzzed map.
trait Key: std::hash::Hash + Eq + Copy + Send + Sync + std::fmt::Debug + 'static {
    fn of(k: u16) -> Self;
}

impl Key for u16 {
    fn of(k: u16) -> Self {
        k
    }
}

impl Key for u128 {
    fn of(k: u16) -> Self {
        u128::from(k)
    }
}

/// Key byte 255 is the overflow key itself (counted like any key, always admitted).
fn key<K: Key>(k: u8) -> K {
    K::of(if k == u8::MAX { u16::MAX } else { u16::from(k) })
}

/// The documented arithmetic: counts are kept modulo 2^56.
fn bump(v: &mut u64, n: u64) {
    *v = v.wrapping_add(n) & ((1 << 56) - 1);
}

fuzz_target!(|input: Input| {
    if input.entries {
        run::<u128>(input);
    } else {
        run::<u16>(input);
    }
});

fn run<K: Key>(input: Input) {
    let overflow: K = key(u8::MAX);
    let mut b = CounterMap::<K>::builder().shards(usize::from(input.shards % 4) + 1);
    let cap = input.cap.map(|c| usize::from(c % 8));
    if let Some(c) = cap {
        b = b.key_cap(c, overflow);
    }
    let m = b.build();
    let mut model: HashMap<K, u64> = HashMap::new();
    // Where a new key's count goes under the cap (ordinary keys only count toward it).
    let target = |model: &HashMap<K, u64>, k: K| -> K {
        match cap {
            Some(c) if !model.contains_key(&k) => {
                let ordinary = model.keys().filter(|&&k| k != overflow).count();
                if ordinary >= c {
                    overflow
                } else {
                    k
                }
            }
            _ => k,
        }
    };
    for op in input.ops {
        match op {
            Op::Inc(k) => {
                let k: K = key(k);
                m.inc(&k);
                bump(model.entry(target(&model, k)).or_default(), 1);
            }
            Op::Add(k, n) => {
                let k: K = key(k);
                m.add(&k, n);
                bump(model.entry(target(&model, k)).or_default(), n);
            }
            Op::Get(k) => {
                let k: K = key(k);
                assert_eq!(m.get(&k), model.get(&k).copied().unwrap_or(0));
                assert_eq!(m.contains_key(&k), model.contains_key(&k));
            }
            Op::Remove(k) => {
                let k: K = key(k);
                assert_eq!(m.remove(&k), model.remove(&k));
            }
            Op::Snapshot => {
                assert_eq!(m.snapshot(), model);
                let it: HashMap<K, u64> = m.iter().collect();
                assert_eq!(it, model);
            }
            Op::Reset => {
                assert_eq!(m.snapshot_and_reset(), model);
                model.values_mut().for_each(|v| *v = 0);
            }
            Op::Clear => {
                m.clear();
                model.clear();
            }
            Op::Len => {
                assert_eq!(m.len(), model.len());
                assert_eq!(m.is_empty(), model.is_empty());
            }
            Op::HandleAdd(k, n) => {
                let k: K = key(k);
                let t = target(&model, k);
                let c = m.counter(&k);
                assert_eq!(c.key(), t);
                c.add(n);
                bump(model.entry(t).or_default(), n);
                assert_eq!(c.get(), model[&t]);
            }
        }
    }
    assert_eq!(m.snapshot(), model);
    assert_eq!(m.len(), model.len());
}
