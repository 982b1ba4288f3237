//! Single-threaded op sequences of a deque's owner, a stealer and an injector,
//! compared with `VecDeque` models. Each item has its own id and is recorded in a
//! ledger when dropped: after every op the items still alive must be exactly those
//! the three models hold, whether the others were popped, stolen, moved by a batch
//! or dropped with a deque, and once everything is dropped every item must have been
//! dropped exactly once.
#![no_main]

use arbitrary::Arbitrary;
use atomkit::deque::{Injector, Stealer, Worker};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

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
    /// Drops the worker and its stealer with the items they hold (the worker's
    /// handle first, or the stealer's) and starts a new deque of the same flavor.
    Renew {
        stealer_last: bool,
    },
    /// Drops the injector with its items and starts a new one.
    RenewInjector,
}

#[derive(Arbitrary, Debug)]
struct Input {
    fifo: bool,
    dest_fifo: bool,
    /// At the end, drop everything with its items instead of draining in model order.
    drop_at_end: bool,
    ops: Vec<Op>,
}

#[path = "../common/ledger.rs"]
mod ledger;
use ledger::{check, Ledger, Tracked};

fn worker(fifo: bool) -> Worker<Tracked> {
    if fifo {
        Worker::new_fifo()
    } else {
        Worker::new_lifo()
    }
}

/// Pops from the model the way the worker pops.
fn model_pop(m: &mut VecDeque<usize>, fifo: bool) -> Option<usize> {
    if fifo {
        m.pop_front()
    } else {
        m.pop_back()
    }
}

/// Moves a batch of `n` oldest items of `from` into `to` (pushed oldest first).
fn model_batch(from: &mut VecDeque<usize>, to: &mut VecDeque<usize>, n: usize) {
    for _ in 0..n {
        let v = from.pop_front().unwrap();
        to.push_back(v);
    }
}

fn batch_size(len: usize, limit: usize) -> usize {
    len.div_ceil(2).min(limit)
}

/// The id of a taken item; the item itself is dropped here.
fn id(t: Option<Tracked>) -> Option<usize> {
    t.map(|t| t.id)
}

/// A new worker of `fifo`'s flavor and its stealer.
fn deque(fifo: bool) -> (Worker<Tracked>, Stealer<Tracked>) {
    let w = worker(fifo);
    let s = w.stealer();
    (w, s)
}

fuzz_target!(|input: Input| {
    let ledger = Rc::new(RefCell::new(Ledger::default()));
    let (mut w, mut s) = deque(input.fifo);
    let dest = worker(input.dest_fifo);
    let mut inj = Injector::new();
    // The ids of the items in the worker's deque, the destination of the batches and
    // the injector, oldest first.
    let (mut m, mut md, mut mi) = (VecDeque::new(), VecDeque::new(), VecDeque::new());
    // Every id alive must be in one of the models, and every id in them alive.
    let check_all = |m: &VecDeque<usize>, md: &VecDeque<usize>, mi: &VecDeque<usize>| {
        let all: VecDeque<usize> = m.iter().chain(md).chain(mi).copied().collect();
        check(&ledger, &all);
    };
    for op in input.ops {
        match op {
            Op::Push(_) => {
                let v = Tracked::new(&ledger);
                m.push_back(v.id);
                assert_eq!(w.push_was_empty(v), m.len() == 1);
            }
            Op::PushMany(k) => {
                for _ in 0..k {
                    let v = Tracked::new(&ledger);
                    m.push_back(v.id);
                    w.push(v);
                }
            }
            Op::Pop => assert_eq!(id(w.pop()), model_pop(&mut m, input.fifo)),
            Op::Steal => assert_eq!(id(s.steal().success()), m.pop_front()),
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
                    id(s.steal_batch_with_limit_and_pop(&dest, limit).success()),
                    want
                );
            }
            Op::DestPop => assert_eq!(id(dest.pop()), model_pop(&mut md, input.dest_fifo)),
            Op::InjectorPush(_) => {
                let v = Tracked::new(&ledger);
                mi.push_back(v.id);
                inj.push(v);
            }
            Op::InjectorSteal => {
                let r = inj.steal();
                assert!(!r.is_retry());
                assert_eq!(id(r.success()), mi.pop_front());
            }
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
                assert_eq!(s.is_empty(), m.is_empty());
                assert_eq!(inj.is_empty(), mi.is_empty());
            }
            Op::Renew { stealer_last } => {
                let (new_w, new_s) = deque(input.fifo);
                let old_w = std::mem::replace(&mut w, new_w);
                let old_s = std::mem::replace(&mut s, new_s);
                // The first handle dropped leaves every item alive.
                if stealer_last {
                    drop(old_w);
                    check_all(&m, &md, &mi);
                    drop(old_s);
                } else {
                    drop(old_s);
                    check_all(&m, &md, &mi);
                    drop(old_w);
                }
                m.clear();
            }
            Op::RenewInjector => {
                drop(std::mem::replace(&mut inj, Injector::new()));
                mi.clear();
            }
        }
        check_all(&m, &md, &mi);
    }
    if input.drop_at_end {
        drop((w, s, dest, inj));
    } else {
        // Drain in model order.
        while let Some(v) = model_pop(&mut m, input.fifo) {
            assert_eq!(id(w.pop()), Some(v));
        }
        assert_eq!(id(w.pop()), None);
        assert_eq!(id(s.steal().success()), None);
        while let Some(v) = model_pop(&mut md, input.dest_fifo) {
            assert_eq!(id(dest.pop()), Some(v));
        }
        assert_eq!(id(dest.pop()), None);
        while let Some(v) = mi.pop_front() {
            assert_eq!(id(inj.steal().success()), Some(v));
        }
        assert_eq!(id(inj.steal().success()), None);
        check(&ledger, &VecDeque::new());
        drop((w, s, dest, inj));
    }
    // Nothing is left alive: every item was dropped, and (by `Tracked::drop`) once.
    check(&ledger, &VecDeque::new());
});
