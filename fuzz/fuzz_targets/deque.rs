//! Single-threaded op sequences of a deque's owner, a stealer and an injector,
//! compared with `VecDeque` models.
#![no_main]

use arbitrary::Arbitrary;
use atomkit::deque::{Injector, Steal, Worker};
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;

#[derive(Arbitrary, Debug)]
enum Op {
    Push(u16),
    PushMany(u8),
    Pop,
    Steal,
    StealBatch(u8),
    StealBatchAndPop(u8),
    DestPop,
    InjectorPush(u16),
    InjectorSteal,
    InjectorStealBatch(u8),
    Len,
}

#[derive(Arbitrary, Debug)]
struct Input {
    fifo: bool,
    dest_fifo: bool,
    ops: Vec<Op>,
}

fn worker(fifo: bool) -> Worker<u32> {
    if fifo {
        Worker::new_fifo()
    } else {
        Worker::new_lifo()
    }
}

/// Pops from the model the way the worker pops.
fn model_pop(m: &mut VecDeque<u32>, fifo: bool) -> Option<u32> {
    if fifo {
        m.pop_front()
    } else {
        m.pop_back()
    }
}

/// Moves a batch of `n` oldest items of `from` into `to` (pushed oldest first).
fn model_batch(from: &mut VecDeque<u32>, to: &mut VecDeque<u32>, n: usize) {
    for _ in 0..n {
        let v = from.pop_front().unwrap();
        to.push_back(v);
    }
}

fn batch_size(len: usize, limit: usize) -> usize {
    len.div_ceil(2).min(limit)
}

fuzz_target!(|input: Input| {
    let w = worker(input.fifo);
    let s = w.stealer();
    let dest = worker(input.dest_fifo);
    let inj = Injector::new();
    let (mut m, mut md, mut mi) = (VecDeque::new(), VecDeque::new(), VecDeque::new());
    let mut next = 0u32;
    for op in input.ops {
        match op {
            Op::Push(_) => {
                assert_eq!(w.push_was_empty(next), m.is_empty());
                m.push_back(next);
                next += 1;
            }
            Op::PushMany(k) => {
                for _ in 0..k {
                    w.push(next);
                    m.push_back(next);
                    next += 1;
                }
            }
            Op::Pop => assert_eq!(w.pop(), model_pop(&mut m, input.fifo)),
            Op::Steal => assert_eq!(s.steal().success(), m.pop_front()),
            Op::StealBatch(limit) => {
                let limit = usize::from(limit).max(1);
                let n = batch_size(m.len(), limit);
                let r = s.steal_batch_with_limit(&dest, limit);
                assert_eq!(r.is_success(), n > 0);
                assert!(!r.is_retry());
                model_batch(&mut m, &mut md, n);
            }
            Op::StealBatchAndPop(limit) => {
                let limit = usize::from(limit).max(1);
                let n = batch_size(m.len(), limit);
                let want = m.pop_front();
                if n > 0 {
                    model_batch(&mut m, &mut md, n - 1);
                }
                assert_eq!(
                    s.steal_batch_with_limit_and_pop(&dest, limit).success(),
                    want
                );
            }
            Op::DestPop => assert_eq!(dest.pop(), model_pop(&mut md, input.dest_fifo)),
            Op::InjectorPush(_) => {
                inj.push(next);
                mi.push_back(next);
                next += 1;
            }
            Op::InjectorSteal => assert_eq!(
                inj.steal(),
                mi.pop_front().map_or(Steal::Empty, Steal::Success)
            ),
            Op::InjectorStealBatch(limit) => {
                // The injector batches within one block: check the items, not the count.
                let limit = usize::from(limit).max(1);
                let before = dest.len();
                let r = inj.steal_batch_with_limit(&dest, limit);
                let moved = dest.len() - before;
                assert_eq!(r.is_success(), moved > 0);
                assert_eq!(moved == 0, mi.is_empty());
                assert!(moved <= limit && moved <= mi.len().div_ceil(2));
                model_batch(&mut mi, &mut md, moved);
            }
            Op::Len => {
                assert_eq!(w.len(), m.len());
                assert_eq!(s.len(), m.len());
                assert_eq!(dest.len(), md.len());
                assert_eq!(inj.len(), mi.len());
                assert_eq!(w.is_empty(), m.is_empty());
            }
        }
    }
    // Drain in model order.
    while let Some(v) = model_pop(&mut m, input.fifo) {
        assert_eq!(w.pop(), Some(v));
    }
    assert_eq!(w.pop(), None);
    while let Some(v) = model_pop(&mut md, input.dest_fifo) {
        assert_eq!(dest.pop(), Some(v));
    }
    while let Some(v) = mi.pop_front() {
        assert_eq!(inj.steal(), Steal::Success(v));
    }
});
