//! The sequential specification of a `CounterMap<u64>` for the linearizability
//! checker, what each operation of a history does on the real map, and random
//! per-thread plans of small operations. Shared by `tests/counter_map.rs` and the
//! shuttle models; include it next to `lincheck` with
//! `#[path = "support/counter_model.rs"] mod counter_model;`.
//!
//! What the module doc (`# Consistency`) promises, and so what the model holds the
//! map to:
//!
//! - Linearizable, per key: `add`/`inc` (at their read-modify-write), `remove` (which
//!   returns the count since the last reset, or `None` for an absent key; a later
//!   increment inserts the key afresh), and the `Counter` handle's `add`/`inc` and
//!   `key` (a handle whose key was removed re-inserts it on its next increment).
//! - The key cap: a new key past the cap counts the overflow key, and a handle made
//!   for it (or re-pointed by an increment after a removal) counts the overflow key
//!   from then on. The cap decides when the key is resolved, under its shard's lock,
//!   which can be before the count lands; [`split_routing`] models that.
//! - Weakly consistent: `get` (and `Counter::get`, which answers as `get` does) returns
//!   "some value between the count when the call started and the count when it
//!   returned" under concurrent increments, and nothing narrower when a removal
//!   races it. A `get` is therefore split into two bounds (see [`weaken_gets`]), and
//!   dropped where a removal of its key overlaps it.
//! - Not linearizable, even for one key: `snapshot_and_reset` promises exactness
//!   (every increment reported once), not an instant: it takes a hot key's count
//!   words one by one, so a racing `remove` can take the words it has yet to reach
//!   (with increments made after the reset saw the key removed). `snapshot`, `len`,
//!   `contains_key` and `clear` are weakly consistent too. The histories call all of
//!   these only while no other operation runs (between phases, after joins), where
//!   the doc makes them exact.

use crate::lincheck::{Event, Model};
use atomkit::counter_map::{Counter, CounterMap};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;

/// The overflow key of maps with a key cap (an ordinary key of maps without one).
pub(crate) const OVERFLOW: u64 = 0;
/// Handles per thread: one per key `0..=3`.
pub(crate) const HANDLES_PER_THREAD: usize = 4;
/// Threads a history may have.
pub(crate) const MAX_THREADS: usize = 4;
/// Handle indices: thread `t`'s handle on key `k` is `t * HANDLES_PER_THREAD + k`.
pub(crate) const HANDLES: usize = MAX_THREADS * HANDLES_PER_THREAD;

/// The model's state: the map's keys with their counts since the last reset (a
/// `BTreeMap`, as the checker hashes states), the key cap, the key each handle
/// counts, and the halves of split counting operations (see [`split_routing`]) that
/// ran without their other half yet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CounterModel {
    counts: BTreeMap<u64, u64>,
    /// The key cap's limit (the overflow key is [`OVERFLOW`]), if any.
    cap: Option<usize>,
    /// Handle `h`'s key, once `NewCounter` made it.
    handles: [Option<u64>; HANDLES],
    /// Operations whose `Resolve` half ran first: whether the cap refused their key.
    resolved: BTreeMap<u64, bool>,
    /// Operations whose `Counted` half ran first (their `Resolve` then does nothing).
    counted: BTreeSet<u64>,
}

impl CounterModel {
    /// An empty map, with a key cap of `cap` keys if given.
    pub(crate) fn new(cap: Option<usize>) -> Self {
        CounterModel {
            counts: BTreeMap::new(),
            cap,
            handles: [None; HANDLES],
            resolved: BTreeMap::new(),
            counted: BTreeSet::new(),
        }
    }

    /// Whether the cap refuses `key` now: it is new, not the overflow key, and the
    /// cap is full.
    fn refuses(&self, key: u64) -> bool {
        match self.cap {
            None => false,
            Some(limit) => {
                key != OVERFLOW
                    && !self.counts.contains_key(&key)
                    && self.counts.keys().filter(|&&k| k != OVERFLOW).count() >= limit
            }
        }
    }

    /// The key a count for `key` lands on, inserted with 0 if new: `key` itself,
    /// unless the cap refuses it now, or `refused` it earlier in the call, when the
    /// overflow key takes it.
    fn resolve(&mut self, key: u64, refused: bool) -> u64 {
        let k = if refused || self.refuses(key) {
            OVERFLOW
        } else {
            key
        };
        self.counts.entry(k).or_insert(0);
        k
    }

    fn add(&mut self, key: u64, n: u64, refused: bool) -> u64 {
        let k = self.resolve(key, refused);
        let c = self.counts.get_mut(&k).unwrap();
        *c = c.wrapping_add(n) & ((1 << 63) - 1);
        k
    }

    fn count(&self, key: u64) -> u64 {
        self.counts.get(&key).copied().unwrap_or(0)
    }

    /// The key a counting operation counts (or makes a handle for).
    fn counted_key(&self, op: &Op) -> u64 {
        match *op {
            Op::Add(key, _) | Op::Inc(key) | Op::NewCounter { key, .. } => key,
            Op::CounterAdd { h, .. } => self.handles[h].expect("a handle is made first"),
            _ => unreachable!("not a counting operation: {op:?}"),
        }
    }

    /// Applies a counting operation; to the overflow key if `refused`.
    fn count_op(&mut self, op: &Op, refused: bool) -> Ret {
        match *op {
            Op::Add(key, n) => {
                self.add(key, n, refused);
            }
            Op::Inc(key) => {
                self.add(key, 1, refused);
            }
            Op::NewCounter { h, key } => self.handles[h] = Some(self.resolve(key, refused)),
            Op::CounterAdd { h, n } => {
                let key = self.counted_key(op);
                // The handle's entry is alive exactly while its key is listed (a
                // removal kills it): it counts there, or re-resolves its key and
                // counts wherever that lands, from then on.
                self.handles[h] = Some(self.add(key, n, refused));
            }
            _ => unreachable!("not a counting operation: {op:?}"),
        }
        Ret::Unit
    }
}

/// An operation of a history.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// `add(&key, n)`.
    Add(u64, u64),
    /// `inc(&key)`.
    Inc(u64),
    /// `remove(&key)`.
    Remove(u64),
    /// `counter(&key)`, kept as handle `h`.
    NewCounter { h: usize, key: u64 },
    /// `add(n)` on handle `h`.
    CounterAdd { h: usize, n: u64 },
    /// `key()` of handle `h`.
    CounterKey { h: usize },
    /// `get(&key)`: exact in the model; [`weaken_gets`] turns each recorded one into
    /// the two bounds below before a history is checked.
    Get(u64),
    /// Half of a `get` that returned `n`: at some instant of the call the count was
    /// at most `n` (the count when the call started).
    CountAtMost(u64, u64),
    /// The other half: at some instant of the call the count was at least `n` (the
    /// count when it returned).
    CountAtLeast(u64, u64),
    /// The first half of the counting operation `id` (the inner operation), made by
    /// [`split_routing`]: the instant the map decides the fate of its key if it is
    /// new, listing it with a count of 0 (taking a cap slot) or refusing it.
    Resolve(u64, Box<Op>),
    /// The second half: the count itself, on the overflow key if `Resolve` refused.
    Counted(u64, Box<Op>),
    /// `contains_key(&key)`; only while nothing else runs.
    ContainsKey(u64),
    /// `len()`; only while nothing else runs.
    Len,
    /// `snapshot()`; only while nothing else runs.
    Snapshot,
    /// `snapshot_and_reset()`; only while nothing else runs.
    SnapshotAndReset,
    /// `clear()`; only while nothing else runs.
    Clear,
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ret {
    Unit,
    Count(u64),
    Removed(Option<u64>),
    Key(u64),
    Bool(bool),
    Counts(BTreeMap<u64, u64>),
    /// A bound of a `get` holds here (and what a `Resolve` returns).
    Holds,
    /// It does not.
    Fails,
}

impl Model for CounterModel {
    type Op = Op;
    type Ret = Ret;
    fn step(&mut self, op: &Op) -> Ret {
        match *op {
            Op::Add(..) | Op::Inc(_) | Op::NewCounter { .. } | Op::CounterAdd { .. } => {
                self.count_op(op, false)
            }
            Op::Remove(key) => Ret::Removed(self.counts.remove(&key)),
            Op::CounterKey { h } => Ret::Key(self.handles[h].expect("a handle is made first")),
            Op::Get(key) => Ret::Count(self.count(key)),
            Op::CountAtMost(key, n) => {
                if self.count(key) <= n {
                    Ret::Holds
                } else {
                    Ret::Fails
                }
            }
            Op::CountAtLeast(key, n) => {
                if self.count(key) >= n {
                    Ret::Holds
                } else {
                    Ret::Fails
                }
            }
            Op::Resolve(id, ref inner) => {
                if !self.counted.remove(&id) {
                    let key = self.counted_key(inner);
                    let refused = self.refuses(key);
                    if !refused {
                        self.counts.entry(key).or_insert(0);
                    }
                    self.resolved.insert(id, refused);
                }
                Ret::Holds
            }
            Op::Counted(id, ref inner) => {
                let refused = match self.resolved.remove(&id) {
                    Some(refused) => refused,
                    None => {
                        self.counted.insert(id);
                        false
                    }
                };
                self.count_op(inner, refused)
            }
            Op::ContainsKey(key) => Ret::Bool(self.counts.contains_key(&key)),
            Op::Len => Ret::Count(self.counts.len() as u64),
            Op::Snapshot => Ret::Counts(self.counts.clone()),
            Op::SnapshotAndReset => {
                let out = self.counts.clone();
                self.counts.values_mut().for_each(|c| *c = 0);
                Ret::Counts(out)
            }
            Op::Clear => {
                self.counts.clear();
                Ret::Unit
            }
        }
    }
}

/// A key type the model's maps are made of, named by a `u64`: `u64` itself, whose
/// keys the map keeps in its slots, and `u128`, whose keys it keeps in entries.
pub(crate) trait ModelKey:
    std::hash::Hash + Eq + Clone + Send + Sync + std::fmt::Debug + 'static
{
    fn of(k: u64) -> Self;
    fn id(&self) -> u64;
}

impl ModelKey for u64 {
    fn of(k: u64) -> Self {
        k
    }
    fn id(&self) -> u64 {
        *self
    }
}

impl ModelKey for u128 {
    fn of(k: u64) -> Self {
        u128::from(k)
    }
    fn id(&self) -> u64 {
        u64::try_from(*self).expect("made by `of`")
    }
}

/// Runs `op` on `map`; `handles` are the calling thread's `Counter`s, by handle index.
pub(crate) fn apply<'m, K: ModelKey, S: BuildHasher>(
    map: &'m CounterMap<K, S>,
    handles: &mut [Option<Counter<'m, K, S>>],
    op: &Op,
) -> Ret {
    match *op {
        Op::Add(key, n) => {
            map.add(&K::of(key), n);
            Ret::Unit
        }
        Op::Inc(key) => {
            map.inc(&K::of(key));
            Ret::Unit
        }
        Op::Remove(key) => Ret::Removed(map.remove(&K::of(key))),
        Op::NewCounter { h, key } => {
            handles[h] = Some(map.counter(&K::of(key)));
            Ret::Unit
        }
        Op::CounterAdd { h, n } => {
            let c = handles[h]
                .as_ref()
                .expect("a handle is made before it counts");
            if n == 1 {
                c.inc();
            } else {
                c.add(n);
            }
            Ret::Unit
        }
        Op::CounterKey { h } => Ret::Key(handles[h].as_ref().expect("made first").key().id()),
        Op::Get(key) => Ret::Count(map.get(&K::of(key))),
        Op::CountAtMost(..) | Op::CountAtLeast(..) | Op::Resolve(..) | Op::Counted(..) => {
            unreachable!("made for the checker only")
        }
        Op::ContainsKey(key) => Ret::Bool(map.contains_key(&K::of(key))),
        Op::Len => Ret::Count(map.len() as u64),
        Op::Snapshot => Ret::Counts(ids(map.snapshot())),
        Op::SnapshotAndReset => Ret::Counts(ids(map.snapshot_and_reset())),
        Op::Clear => {
            map.clear();
            Ret::Unit
        }
    }
}

/// A snapshot's counts by key name.
fn ids<K: ModelKey>(counts: std::collections::HashMap<K, u64>) -> BTreeMap<u64, u64> {
    counts.into_iter().map(|(k, n)| (k.id(), n)).collect()
}

/// Replaces each `get` of `history` by the two bounds the doc promises for it
/// (`CountAtMost` and `CountAtLeast` over the same interval: while only increments
/// run, the count only grows, so they hold at some instants of the call exactly when
/// the value lies between the count at its start and the count at its end), and
/// drops a `get` that a `remove` of its key overlaps, for which the doc bounds
/// nothing. Returns the history and how many gets it kept.
pub(crate) fn weaken_gets(history: &[Event<Op, Ret>]) -> (Vec<Event<Op, Ret>>, usize) {
    let mut out = Vec::with_capacity(history.len() + 8);
    let mut kept = 0;
    for e in history {
        let (key, n) = match (&e.op, &e.ret) {
            (Op::Get(key), Ret::Count(n)) => (*key, *n),
            _ => {
                out.push(e.clone());
                continue;
            }
        };
        let raced = history.iter().any(|r| {
            matches!(r.op, Op::Remove(k) if k == key) && r.call < e.done && e.call < r.done
        });
        if raced {
            continue;
        }
        kept += 1;
        for op in [Op::CountAtMost(key, n), Op::CountAtLeast(key, n)] {
            out.push(Event {
                op,
                ret: Ret::Holds,
                ..e.clone()
            });
        }
    }
    (out, kept)
}

/// Splits each counting operation of `history` (increments, handles made and
/// counted through) into the instant its key is resolved and the count itself, over
/// the same interval. Under its shard's lock the map lists a new key with a count of
/// 0 (taking a key-cap slot) or refuses it, then counts: on the listed entry still
/// under the lock, or on the overflow key after letting go of it (see the module
/// doc's `# Consistency`). Only a key cap makes the gap observable to the
/// operations of these histories (another new key refused for the slot, a count on
/// the overflow key after a removal freed a slot), so only maps with one need it.
pub(crate) fn split_routing(history: &[Event<Op, Ret>]) -> Vec<Event<Op, Ret>> {
    let mut out = Vec::with_capacity(history.len() * 2);
    for e in history {
        match e.op {
            Op::Add(..) | Op::Inc(_) | Op::NewCounter { .. } | Op::CounterAdd { .. } => {
                let op = Box::new(e.op.clone());
                out.push(Event {
                    op: Op::Resolve(e.call, op.clone()),
                    ret: Ret::Holds,
                    ..e.clone()
                });
                out.push(Event {
                    op: Op::Counted(e.call, op),
                    ..e.clone()
                });
            }
            _ => out.push(e.clone()),
        }
    }
    out
}

/// Checks a history of a map with key cap `cap` (starting empty) for
/// linearizability against the model, after [`weaken_gets`] and, with a cap,
/// [`split_routing`]. Returns how many gets were checked.
pub(crate) fn check(cap: Option<usize>, history: &[Event<Op, Ret>]) -> Result<usize, String> {
    let (history, gets) = weaken_gets(history);
    let history = if cap.is_some() {
        split_routing(&history)
    } else {
        history
    };
    crate::lincheck::check(CounterModel::new(cap), &history).map(|_| gets)
}

/// A small deterministic generator (xorshift64*), so that a failing round replays.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 16) % n
    }
}

/// `len` random operations for thread `t` over `keys`, which are also the keys its
/// handles may be made for: increments (mostly), removals, handles made and counted
/// through, a handle's key, and gets. `have` says which of the thread's handles exist
/// (a handle counts only once made); the plan updates it.
pub(crate) fn plan(
    rng: &mut Rng,
    t: usize,
    len: usize,
    keys: &[u64],
    have: &mut [bool; HANDLES_PER_THREAD],
) -> Vec<Op> {
    (0..len)
        .map(|_| {
            let key = keys[rng.below(keys.len() as u64) as usize];
            let slot = key as usize % HANDLES_PER_THREAD;
            let h = t * HANDLES_PER_THREAD + slot;
            match rng.below(10) {
                0 => Op::Inc(key),
                1 | 2 => Op::Add(key, [0, 2, 3, 5][rng.below(4) as usize]),
                3 | 4 => Op::Remove(key),
                5 | 6 if have[slot] => Op::CounterAdd {
                    h,
                    n: 1 + rng.below(3),
                },
                5 | 6 => {
                    have[slot] = true;
                    Op::NewCounter { h, key }
                }
                7 if have[slot] => Op::CounterKey { h },
                _ => Op::Get(key),
            }
        })
        .collect()
}

/// The shape of a history: its threads, the keys they touch, and the key cap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub(crate) threads: usize,
    pub(crate) keys: &'static [u64],
    /// The key cap's limit; the overflow key [`OVERFLOW`] is among `keys` then.
    pub(crate) cap: Option<usize>,
}

/// The shapes histories cycle through: one hot key (its count words stripe when
/// adders collide), three keys, and a key cap of one or two with the overflow key
/// counted and removed directly too.
pub(crate) const SHAPES: [Shape; 4] = [
    Shape {
        threads: 3,
        keys: &[1],
        cap: None,
    },
    Shape {
        threads: 3,
        keys: &[1, 2, 3],
        cap: None,
    },
    Shape {
        threads: 2,
        keys: &[OVERFLOW, 1, 2],
        cap: Some(1),
    },
    Shape {
        threads: 4,
        keys: &[OVERFLOW, 1, 2, 3],
        cap: Some(2),
    },
];

impl Shape {
    /// An empty map of this shape, two shards, hashing with `hasher`.
    pub(crate) fn map<K: ModelKey, S: BuildHasher>(&self, hasher: S) -> CounterMap<K, S> {
        let b = CounterMap::builder().shards(2).hasher(hasher);
        match self.cap {
            Some(limit) => b.key_cap(limit, K::of(OVERFLOW)).build(),
            None => b.build(),
        }
    }

    /// Checks a history of a map of this shape; see [`check`].
    pub(crate) fn check(&self, history: &[Event<Op, Ret>]) -> Result<usize, String> {
        check(self.cap, history)
    }

    /// Operations run alone between two phases: a reset (so later removals return
    /// the count since it), now and then a snapshot, the length, or a clear.
    pub(crate) fn between_phases(&self, rng: &mut Rng) -> Vec<Op> {
        match rng.below(6) {
            0 => vec![Op::Snapshot, Op::Len],
            1 => vec![Op::Clear],
            _ => vec![Op::SnapshotAndReset],
        }
    }

    /// Operations run alone at the end, each exact then: every key's count and
    /// presence, the length, a snapshot, a reset and the counts after it.
    pub(crate) fn tail(&self) -> Vec<Op> {
        let mut ops = Vec::new();
        for &k in self.keys {
            ops.extend([Op::Get(k), Op::ContainsKey(k)]);
        }
        ops.extend([Op::Len, Op::Snapshot, Op::SnapshotAndReset]);
        ops.extend(self.keys.iter().map(|&k| Op::Get(k)));
        ops
    }
}
