//! Single-threaded op sequences on `ArrayQueue`, compared with a `VecDeque` of the
//! same capacity: push, force_push, pop, len/is_empty/is_full, and into_iter with the
//! iterator dropped part-way. Each value has its own id and is recorded in a ledger
//! when dropped: after every op the values still alive must be exactly the model's,
//! and once the queue is dropped every value must have been dropped exactly once.
#![no_main]

use arbitrary::Arbitrary;
use atomkit::queue::ArrayQueue;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

#[derive(Arbitrary, Debug)]
enum Op {
    Push,
    ForcePush,
    Pop,
    Len,
    /// Swaps in a new queue and consumes the old one through `into_iter`, taking
    /// up to `take` values, then drops the iterator with whatever is left.
    IntoIter {
        take: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    cap: u8,
    ops: Vec<Op>,
}

#[path = "../common/ledger.rs"]
mod ledger;
use ledger::{check, Ledger, Tracked};

fuzz_target!(|input: Input| {
    let cap = (input.cap as usize % 40) + 1;
    let ledger = Rc::new(RefCell::new(Ledger::default()));
    let mut q = ArrayQueue::new(cap);
    // The ids of the values in the queue, oldest first.
    let mut m: VecDeque<usize> = VecDeque::new();
    let id = |t: Option<Tracked>| t.map(|t| t.id);
    for op in input.ops {
        match op {
            Op::Push => {
                let v = Tracked::new(&ledger);
                let vid = v.id;
                match q.push(v) {
                    Ok(()) => {
                        assert!(m.len() < cap, "push into a full queue");
                        m.push_back(vid);
                    }
                    Err(back) => {
                        assert_eq!(m.len(), cap, "push refused with room");
                        assert_eq!(back.id, vid, "push handed back another value");
                    }
                }
            }
            Op::ForcePush => {
                let v = Tracked::new(&ledger);
                let expect = if m.len() == cap { m.pop_front() } else { None };
                m.push_back(v.id);
                // The value pushed out is dropped here; `check` below sees it.
                assert_eq!(id(q.force_push(v)), expect);
            }
            Op::Pop => assert_eq!(id(q.pop()), m.pop_front()),
            Op::Len => {
                assert_eq!(q.len(), m.len());
                assert_eq!(q.is_empty(), m.is_empty());
                assert_eq!(q.is_full(), m.len() == cap);
                assert_eq!(q.capacity(), cap);
            }
            Op::IntoIter { take } => {
                let mut it = std::mem::replace(&mut q, ArrayQueue::new(cap)).into_iter();
                // Up to one more than it holds, so running dry is covered too.
                for _ in 0..take as usize % (m.len() + 2) {
                    assert_eq!(id(it.next()), m.pop_front());
                }
                check(&ledger, &m);
                // The values not taken are dropped with the iterator.
                drop(it);
                m.clear();
            }
        }
        check(&ledger, &m);
    }
    drop(q);
    // Nothing is left alive: every value was dropped, and (by `Tracked::drop`) once.
    check(&ledger, &VecDeque::new());
});
