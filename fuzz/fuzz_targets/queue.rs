//! Single-threaded op sequences on `ArrayQueue`, compared with a `VecDeque` of the
//! same capacity: push, force_push, pop, len/is_empty/is_full, drop and into_iter.
#![no_main]

use arbitrary::Arbitrary;
use atomkit::queue::ArrayQueue;
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;

#[derive(Arbitrary, Debug)]
enum Op {
    Push(u16),
    ForcePush(u16),
    Pop,
    Len,
    IntoIter,
}

#[derive(Arbitrary, Debug)]
struct Input {
    cap: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let cap = (input.cap as usize % 40) + 1;
    let mut q = ArrayQueue::new(cap);
    let mut m: VecDeque<u16> = VecDeque::new();
    for op in input.ops {
        match op {
            Op::Push(v) => {
                let r = q.push(v);
                if m.len() < cap {
                    assert_eq!(r, Ok(()));
                    m.push_back(v);
                } else {
                    assert_eq!(r, Err(v));
                }
            }
            Op::ForcePush(v) => {
                let expect = if m.len() == cap { m.pop_front() } else { None };
                m.push_back(v);
                assert_eq!(q.force_push(v), expect);
            }
            Op::Pop => assert_eq!(q.pop(), m.pop_front()),
            Op::Len => {
                assert_eq!(q.len(), m.len());
                assert_eq!(q.is_empty(), m.is_empty());
                assert_eq!(q.is_full(), m.len() == cap);
                assert_eq!(q.capacity(), cap);
            }
            Op::IntoIter => {
                let all: Vec<u16> = std::mem::replace(&mut q, ArrayQueue::new(cap))
                    .into_iter()
                    .collect();
                assert_eq!(all, m.drain(..).collect::<Vec<_>>());
            }
        }
    }
    assert_eq!(
        q.into_iter().collect::<Vec<_>>(),
        m.into_iter().collect::<Vec<_>>()
    );
});
