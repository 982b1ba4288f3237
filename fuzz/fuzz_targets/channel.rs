//! Single-threaded op sequences on a `channel::bounded` channel, compared with a
//! `VecDeque` model of the same capacity plus a closed flag: try_send, try_recv,
//! timed calls with a deadline already past, close from either side, len and the
//! other snapshots, handle clones and drops. Payloads count their drops: at the end
//! both sides are dropped and every value must have been dropped exactly once.
#![no_main]

use arbitrary::Arbitrary;
use atomkit::channel::{bounded, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use libfuzzer_sys::fuzz_target;
use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

#[derive(Arbitrary, Debug)]
enum Op {
    TrySend(u16),
    SendDeadlinePast(u16),
    TryRecv,
    RecvDeadlinePast,
    CloseTx,
    CloseRx,
    Len,
    CloneTx,
    DropTx,
    CloneRx,
    DropRx,
}

#[derive(Arbitrary, Debug)]
struct Input {
    cap: u8,
    ops: Vec<Op>,
}

/// A payload that counts its drops; a second drop of the same value panics.
struct Counted {
    v: u16,
    drops: Rc<Cell<usize>>,
    dropped: bool,
}

impl Drop for Counted {
    fn drop(&mut self) {
        assert!(!self.dropped, "dropped twice");
        self.dropped = true;
        self.drops.set(self.drops.get() + 1);
    }
}

// SAFETY: the fuzz target is single-threaded; the `Rc` never crosses threads. The
// channel requires `T: Send` only for its own `Send`/`Sync`, not to be used.
unsafe impl Send for Counted {}

fuzz_target!(|input: Input| {
    let cap = input.cap as usize % 9; // 0 is a rendezvous channel
    let drops = Rc::new(Cell::new(0usize));
    let made = Cell::new(0usize);
    let (tx, rx) = bounded::<Counted>(cap);
    let mut txs = vec![tx];
    let mut rxs = vec![rx];
    let mut m: VecDeque<u16> = VecDeque::new();
    let mut closed = false;
    let new = |v: u16| {
        made.set(made.get() + 1);
        Counted {
            v,
            drops: drops.clone(),
            dropped: false,
        }
    };
    for op in input.ops {
        match op {
            Op::TrySend(v) | Op::SendDeadlinePast(v) if !txs.is_empty() => {
                let timed = matches!(op, Op::SendDeadlinePast(_));
                let tx = &txs[0];
                let (full, back) = if timed {
                    match tx.send_deadline(new(v), Instant::now()) {
                        Ok(()) => (false, None),
                        Err(SendTimeoutError::Timeout(b)) => (true, Some(b)),
                        Err(SendTimeoutError::Closed(b)) => (false, Some(b)),
                    }
                } else {
                    match tx.try_send(new(v)) {
                        Ok(()) => (false, None),
                        Err(TrySendError::Full(b)) => (true, Some(b)),
                        Err(TrySendError::Closed(b)) => (false, Some(b)),
                    }
                };
                if closed {
                    assert!(!full && back.as_ref().is_some_and(|b| b.v == v), "closed");
                } else if m.len() == cap {
                    // Full (a rendezvous has no receiver blocked here: always full).
                    assert!(full && back.as_ref().is_some_and(|b| b.v == v), "full");
                } else {
                    assert!(back.is_none(), "room: must send");
                    m.push_back(v);
                }
            }
            Op::TryRecv | Op::RecvDeadlinePast if !rxs.is_empty() => {
                let timed = matches!(op, Op::RecvDeadlinePast);
                let rx = &rxs[0];
                let got = if timed {
                    rx.recv_deadline(Instant::now()).map_err(|e| match e {
                        RecvTimeoutError::Timeout => TryRecvError::Empty,
                        RecvTimeoutError::Closed => TryRecvError::Closed,
                    })
                } else {
                    rx.try_recv()
                };
                match m.pop_front() {
                    Some(v) => assert_eq!(got.map(|c| c.v).ok(), Some(v)),
                    None if closed => assert!(matches!(got, Err(TryRecvError::Closed))),
                    None => assert!(matches!(got, Err(TryRecvError::Empty))),
                }
            }
            Op::CloseTx if !txs.is_empty() => {
                assert_eq!(txs[0].close(), !closed);
                closed = true;
            }
            Op::CloseRx if !rxs.is_empty() => {
                assert_eq!(rxs[0].close(), !closed);
                closed = true;
            }
            Op::Len => {
                let (len, empty, full, c, is_closed) = if let Some(tx) = txs.first() {
                    (
                        tx.len(),
                        tx.is_empty(),
                        tx.is_full(),
                        tx.capacity(),
                        tx.is_closed(),
                    )
                } else if let Some(rx) = rxs.first() {
                    (
                        rx.len(),
                        rx.is_empty(),
                        rx.is_full(),
                        rx.capacity(),
                        rx.is_closed(),
                    )
                } else {
                    continue;
                };
                assert_eq!(len, m.len());
                assert_eq!(empty, m.is_empty());
                assert_eq!(full, m.len() == cap);
                assert_eq!(c, cap);
                assert_eq!(is_closed, closed);
            }
            Op::CloneTx if !txs.is_empty() => txs.push(txs[0].clone()),
            Op::CloneRx if !rxs.is_empty() => rxs.push(rxs[0].clone()),
            Op::DropTx if !txs.is_empty() => {
                drop(txs.pop());
                if txs.is_empty() {
                    closed = true; // the last sender closes
                }
            }
            Op::DropRx if !rxs.is_empty() => {
                drop(rxs.pop());
                if rxs.is_empty() {
                    closed = true; // the last receiver closes and drops the values
                    m.clear();
                    assert_eq!(
                        drops.get(),
                        made.get(),
                        "queued values dropped with the receiver"
                    );
                }
            }
            _ => {}
        }
    }
    drop(txs);
    drop(rxs);
    assert_eq!(drops.get(), made.get(), "every value dropped exactly once");
});
