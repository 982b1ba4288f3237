//! Fuzz the unstable `WordCounterMap` single-threaded against a `HashMap<u64, u64>`
//! model: counting, removal, resets, `clear`, iteration, the key cap and `WordCounter`
//! handles. Built with `RUSTFLAGS="--cfg atomkit_unstable"` (as `cargo xtask fuzz`
//! does).
#![no_main]

#[cfg(not(atomkit_unstable))]
compile_error!("build with RUSTFLAGS=\"--cfg atomkit_unstable\": WordCounterMap is unstable");

use arbitrary::Arbitrary;
use atomkit::counter_map::WordCounterMap;
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
    Contains(u8),
    Iter,
    /// Takes a handle on a key into slot `.0 % 4`, dropping the one there.
    Counter(u8, u8),
    /// Adds through the handle in slot `.0 % 4`, if any.
    HandleAdd(u8, u64),
    HandleGet(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    shards: u8,
    capacity: u8,
    /// A key cap (limit, overflow key byte).
    cap: Option<(u8, u8)>,
    ops: Vec<Op>,
}

#[path = "../../tests/support/identity_hash.rs"]
mod identity_hash;
use identity_hash::Identity;

/// The word that marks a free slot under the identity hash (the map hashes a fixed
/// seed to pick it), so that key byte 255 exercises the side word that holds it.
const FREE_SLOT_WORD: u64 = 0x9e37_79b9_7f4a_7c15;

/// Keys 4 apart share a home slot in tables of up to 4 slots; byte 255 is the free
/// slot's word.
fn key(k: u8) -> u64 {
    if k == u8::MAX {
        FREE_SLOT_WORD
    } else {
        u64::from(k) * 4
    }
}

/// The documented arithmetic: counts are kept modulo 2^56.
fn bump(v: &mut u64, n: u64) {
    *v = v.wrapping_add(n) & ((1 << 56) - 1);
}

/// The model's key cap: which key a new key is counted on.
struct Cap {
    limit: usize,
    overflow: u64,
}

/// The key an add to `k` lands on: `k` if listed or admitted, else the overflow key.
fn admit(model: &HashMap<u64, u64>, cap: &Option<Cap>, k: u64) -> u64 {
    match cap {
        Some(c) if k != c.overflow && !model.contains_key(&k) => {
            let listed = model.keys().filter(|&&x| x != c.overflow).count();
            if listed >= c.limit {
                c.overflow
            } else {
                k
            }
        }
        _ => k,
    }
}

fuzz_target!(|input: Input| {
    let mut b = WordCounterMap::<u64>::builder()
        .shards(usize::from(input.shards % 4) + 1)
        .capacity(usize::from(input.capacity % 64))
        .hasher(Identity);
    let cap = input.cap.map(|(limit, ov)| Cap {
        limit: usize::from(limit % 8),
        overflow: key(ov),
    });
    if let Some(c) = &cap {
        b = b.key_cap(c.limit, c.overflow);
    }
    let m = b.build();
    let mut model: HashMap<u64, u64> = HashMap::new();
    let mut handles: [Option<_>; 4] = [None, None, None, None];
    for op in input.ops {
        match op {
            Op::Inc(k) => {
                m.inc(key(k));
                bump(model.entry(admit(&model, &cap, key(k))).or_default(), 1);
            }
            Op::Add(k, n) => {
                m.add(key(k), n);
                bump(model.entry(admit(&model, &cap, key(k))).or_default(), n);
            }
            Op::Get(k) => assert_eq!(m.get(key(k)), model.get(&key(k)).copied().unwrap_or(0)),
            Op::Contains(k) => assert_eq!(m.contains_key(key(k)), model.contains_key(&key(k))),
            Op::Remove(k) => assert_eq!(m.remove(key(k)), model.remove(&key(k))),
            Op::Snapshot => assert_eq!(m.snapshot(), model),
            Op::Iter => {
                let all: Vec<(u64, u64)> = m.iter().collect();
                assert_eq!(all.len(), model.len(), "each key once");
                assert_eq!(all.into_iter().collect::<HashMap<_, _>>(), model);
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
            Op::Counter(i, k) => {
                let h = m.counter(key(k));
                let at = admit(&model, &cap, key(k));
                model.entry(at).or_default();
                assert_eq!(h.key(), at);
                assert_eq!(h.get(), model[&at]);
                handles[usize::from(i % 4)] = Some(h);
            }
            Op::HandleAdd(i, n) => {
                if let Some(h) = &handles[usize::from(i % 4)] {
                    let at = admit(&model, &cap, h.key());
                    h.add(n);
                    bump(model.entry(at).or_default(), n);
                    assert_eq!(h.key(), at);
                }
            }
            Op::HandleGet(i) => {
                if let Some(h) = &handles[usize::from(i % 4)] {
                    assert_eq!(h.get(), model.get(&h.key()).copied().unwrap_or(0));
                }
            }
        }
    }
    assert_eq!(m.snapshot(), model);
    assert_eq!(m.len(), model.len());
});
