//! Fuzz the unstable `WordCounterMap` single-threaded against a `HashMap<u64, u64>`
//! model. Built with `RUSTFLAGS="--cfg atomkit_unstable"` (as `cargo xtask fuzz`
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
}

#[derive(Arbitrary, Debug)]
struct Input {
    shards: u8,
    capacity: u8,
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

fuzz_target!(|input: Input| {
    let m = WordCounterMap::<u64>::builder()
        .shards(usize::from(input.shards % 4) + 1)
        .capacity(usize::from(input.capacity % 64))
        .hasher(Identity)
        .build();
    let mut model: HashMap<u64, u64> = HashMap::new();
    for op in input.ops {
        match op {
            Op::Inc(k) => {
                m.inc(key(k));
                bump(model.entry(key(k)).or_default(), 1);
            }
            Op::Add(k, n) => {
                m.add(key(k), n);
                bump(model.entry(key(k)).or_default(), n);
            }
            Op::Get(k) => assert_eq!(m.get(key(k)), model.get(&key(k)).copied().unwrap_or(0)),
            Op::Remove(k) => assert_eq!(m.remove(key(k)), model.remove(&key(k))),
            Op::Snapshot => assert_eq!(m.snapshot(), model),
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
        }
    }
    assert_eq!(m.snapshot(), model);
    assert_eq!(m.len(), model.len());
});
