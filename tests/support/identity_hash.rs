//! A hasher that maps a `u64` to itself, so that tests of the word-key counter map
//! choose which keys share a probe chain (and know the word that marks free slots).
//! Shared by its unit tests, loom models and fuzz target; include it with
//! `#[path = ".../tests/support/identity_hash.rs"] mod identity_hash;`.

use std::hash::{BuildHasher, Hasher};

/// Builds [`IdentityHasher`]s.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Identity;

/// Hashes one `u64` to itself; word keys hash as exactly one `u64`.
#[derive(Debug)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("word keys hash as one u64")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl BuildHasher for Identity {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}
